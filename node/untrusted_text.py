"""The one sanitiser for text a guest, a problem author or a peer wrote, before anything shows it.

A terminal obeys what it is sent: ESC and C1 sequences clear the screen, retitle the window,
write the clipboard (OSC 52) or plant links (OSC 8); bidi overrides reorder what a reader sees;
rich reads `[...]` as markup (`[/]` raises, `[link=...]` makes a hyperlink). `visible` makes
every such character show as an escape instead of acting; `markup` additionally escapes rich
markup for strings embedded in a markup template; `json_text` is the only JSON writer, and it
escapes every non-ASCII character, so `--json` never carries a raw control or bidi character.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

__all__ = ["inline", "json_text", "markup", "visible"]

KEPT = frozenset("\n\t")
# Bidi embeddings, overrides and isolates and the implicit marks (all category Cf, listed for
# the reader: they are the Trojan Source characters, CVE-2021-42574).
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Cc: C0, DEL and C1 controls. Cf: format characters (bidi, zero-width, soft hyphen, tags).
# Cs: lone surrogates (unencodable: printing one raises). Zl/Zp: line and paragraph
# separators, which some terminals and editors break lines on.
SHOWN_AS_ESCAPES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escaped(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str, *, one_line: bool = False) -> str:
    """`text` with every control, format, bidi and separator character but newline and tab
    shown as a Python-style escape (`\\x1b`, `\\u202e`): nothing in it acts on a terminal.
    `one_line`: newline and tab too, for a field printed within a line of ours (a name, a
    kind, an author), where a newline would start a line that reads as ours."""
    if text.isascii() and text.isprintable():  # the common case, in C
        return text
    kept = frozenset() if one_line else KEPT
    return "".join(
        char
        if char in kept or (char not in BIDI and unicodedata.category(char) not in SHOWN_AS_ESCAPES)
        else _escaped(char)
        for char in text
    )


def markup(text: str, *, one_line: bool = False) -> str:
    """`visible(text)` for embedding in a rich markup template: it prints exactly as
    `visible(text)`, brackets and backslashes included, whatever tag follows it."""
    return _BACKSLASHES_BEFORE_BRACKET.sub(_escape_run, visible(text, one_line=one_line))


def inline(text: str) -> str:
    """`markup(text)` for a field inside one line of output: a peer's problem named
    "x\\n  peer 12D3... standing +9.00" printed a standing line of its own in `swarm status`."""
    return markup(text, one_line=True)


# rich.markup.escape misses two cases of rich's parser (rich 15): plain text loses the
# backslash of every `\[` (so `\[` printed as `[`), and a trailing backslash run merges with
# whatever tag the template puts next. Each run of backslashes before a bracket, or at the end,
# is written so the parser gives back exactly that run, whatever follows. A match starts only
# where a run starts: from inside one, the pattern tried again at every backslash of a run that
# no bracket follows (quadratic: 8,000 backslashes took 1.9 s, and a peer's text is shown so).
_BACKSLASHES_BEFORE_BRACKET = re.compile(r"(?<!\\)(\\*)(\[|\Z)")
_TAG = re.compile(r"\[[a-z#/@][^[]*?]")  # what rich.markup reads as a tag


def _escape_run(match: re.Match[str]) -> str:
    run, bracket = match.group(1), match.group(2)
    if not bracket:  # the end: a run before a tag is halved, so give it an empty tag of its own
        return run * 2 + "[b][/b]" if run else ""
    if _TAG.match(match.string, match.start(2)):  # a tag: halved, plus one escaping it
        return run * 2 + "\\["
    return run + "\\["  # plain text: one backslash of `\[` is dropped


def json_text(document: Any) -> str:
    """The one JSON form of a CLI result: ASCII only (every control and bidi character arrives
    as a \\u escape, never raw), indented for people, parseable by anything."""
    return json.dumps(document, ensure_ascii=True, indent=2)
