"""The sanitiser: for any string, nothing it returns acts on a terminal, rich or a JSON reader."""

from __future__ import annotations

import json
import re
import unicodedata
from io import StringIO

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from node.untrusted_text import BIDI, json_text, markup, visible

# Control characters, bidi, brackets and markup fragments are drawn far more often than a
# uniform draw over Unicode would give them.
HOSTILE = st.one_of(
    st.sampled_from(["\x1b", "\x07", "\x9b", "\x9d", "\r", "\x00", "\x7f", "\u2028", "\ufeff",
                     "\ud800", "\U000e0041", "\\", "[", "]", "[/]", "[link=https://x]",
                     "[bold red]", ":smile:", "\n", "\t", *sorted(BIDI)]),
    st.characters(),
)
TEXTS = st.one_of(st.text(), st.lists(HOSTILE, max_size=40).map("".join))
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own styling, the only sequence it may emit


def _acts(char: str) -> bool:
    """Would this character act on a terminal or a reader rather than show as itself?"""
    if char in "\n\t":
        return False
    return char in BIDI or unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"}


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_visible_keeps_nothing_that_acts_and_changes_nothing_harmless(text: str) -> None:
    shown = visible(text)
    assert not any(_acts(char) for char in shown)
    if not any(_acts(char) for char in text):
        assert shown == text


# Where the CLI puts untrusted text in a markup template: inside a tag, before plain text,
# last, and before text that holds brackets of its own.
TEMPLATES = [("[bold]{}[/]", "{}"), ("{} tail", "{} tail"), ("{}", "{}"), ("{}[x", "{}[x"),
             ("{}\\[b] \\[/]", "{}[b] [/]")]


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.sampled_from(TEMPLATES))
def test_markup_renders_through_rich_as_exactly_the_visible_text(
    text: str, template: tuple[str, str]
) -> None:
    written, shown = template
    plain = StringIO()
    Console(file=plain, width=10_000, emoji=False, highlight=False, force_terminal=False,
            tab_size=1).print(written.format(markup(text)), end="", soft_wrap=True)
    assert plain.getvalue() == shown.format(visible(text)).expandtabs(1)
    coloured = StringIO()
    Console(file=coloured, width=10_000, emoji=False, force_terminal=True,
            color_system="truecolor").print(written.format(markup(text)), soft_wrap=True)
    assert not any(_acts(char) for char in SGR.sub("", coloured.getvalue()))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(TEXTS, st.lists(TEXTS, max_size=3), max_size=4))
def test_json_text_is_ascii_and_round_trips(document: dict[str, list[str]]) -> None:
    written = json_text(document)
    assert written.isascii()
    assert not any(_acts(char) for char in written)
    assert json.loads(written) == document
