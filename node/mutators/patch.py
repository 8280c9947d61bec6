"""A strict unified-diff applier: exact content, tolerant line numbers, mutable files only."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

# How far a hunk may sit from the line its header names (models miscount line numbers).
MAX_OFFSET = 40
# ASCII digits, at most 9: `\d` took any script's digits, and int() of 4,301 of them raised
# ValueError (not PatchError) out of the LLM mutator. No strategy file has a billion lines.
_NUMBER = "([0-9]{1,9})"
_HUNK_HEADER = re.compile(rf"^@@ -{_NUMBER}(?:,{_NUMBER})? \+{_NUMBER}(?:,{_NUMBER})? @@")


class PatchError(ValueError):
    """A diff that cannot be applied; the message names the file, hunk and line."""


@dataclass
class _Hunk:
    header: str
    start: int  # 0-based index where the old lines should begin, per the header
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)


@dataclass
class _FilePatch:
    path: str
    creates: bool
    hunks: list[_Hunk] = field(default_factory=list)


def apply_patch(diff: str, files: Mapping[str, str], mutable: Collection[str]) -> dict[str, str]:
    """Apply `diff` to `files`; returns every file, changed ones replaced. Raises PatchError."""
    patches = _parse(diff, mutable)
    if not any(patch.hunks for patch in patches):
        raise PatchError("the diff has no hunks (no '@@ -a,b +c,d @@' lines)")
    result = dict(files)
    for patch in patches:
        if patch.path not in mutable:
            allowed = ", ".join(sorted(mutable))
            raise PatchError(f"the diff changes {patch.path!r}, which is not mutable ({allowed})")
        if patch.path in result:
            result[patch.path] = _apply(patch, result[patch.path])
        elif patch.creates:
            result[patch.path] = _apply(patch, "")
        else:
            raise PatchError(f"the diff changes {patch.path!r}, which does not exist")
    return result


def _parse(diff: str, mutable: Collection[str]) -> list[_FilePatch]:
    lines = [line.rstrip("\r") for line in diff.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    patches: list[_FilePatch] = []
    current: _FilePatch | None = None
    hunk: _Hunk | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        following = lines[index] if index < len(lines) else ""
        if line.startswith("--- ") and following.startswith("+++ "):
            current = _file_header(line[4:], following[4:], mutable)
            patches.append(current)
            hunk = None
            index += 1
        elif match := _HUNK_HEADER.match(line):
            if current is None:
                if len(mutable) != 1:
                    raise PatchError("a hunk comes before any '--- a/FILE' / '+++ b/FILE' header")
                current = _FilePatch(next(iter(mutable)), creates=False)
                patches.append(current)
            # "-l,0" (pure insertion) means "after line l"; otherwise the hunk starts at line l.
            start = int(match[1]) if match[2] == "0" else int(match[1]) - 1
            hunk = _Hunk(line, max(start, 0))
            current.hunks.append(hunk)
        elif line.startswith(("diff --git ", "index ")):
            hunk = None
        elif hunk is None or line.startswith("\\"):
            continue  # prose before the first header, or "\ No newline at end of file"
        elif line == "" or line[0] == " ":
            hunk.old.append(line[1:])  # models often drop the space of a blank context line
            hunk.new.append(line[1:])
        elif line[0] == "-":
            hunk.old.append(line[1:])
        elif line[0] == "+":
            hunk.new.append(line[1:])
        else:
            raise PatchError(f"diff line {index} is not a context, '-' or '+' line: {line!r}")
    return patches


def _file_header(old: str, new: str, mutable: Collection[str]) -> _FilePatch:
    old_path, new_path = _path(old, mutable), _path(new, mutable)
    if new_path is None:
        raise PatchError(f"the diff deletes {old_path!r}; only edits are allowed")
    if old_path is not None and old_path != new_path:
        raise PatchError(f"the diff renames {old_path!r} to {new_path!r}; only edits are allowed")
    return _FilePatch(new_path, creates=old_path is None)


def _path(raw: str, mutable: Collection[str]) -> str | None:
    path = raw.split("\t")[0].strip()
    if path == "/dev/null":
        return None
    if path in mutable:
        return path
    for prefix in ("a/", "b/", "./"):
        path = path.removeprefix(prefix)
    return path


def _apply(patch: _FilePatch, text: str) -> str:
    ends_with_newline = text.endswith("\n") or text == ""
    lines = text.split("\n")
    if ends_with_newline:
        lines.pop()
    lowest = 0  # lines before this index are already patched
    shift = 0  # lines added minus lines removed by earlier hunks
    for number, hunk in enumerate(patch.hunks, 1):
        at = _locate(lines, hunk, hunk.start + shift, lowest, f"hunk {number} of {patch.path}")
        lines[at : at + len(hunk.old)] = hunk.new
        lowest = at + len(hunk.new)
        shift += len(hunk.new) - len(hunk.old)
    return "\n".join(lines) + ("\n" if ends_with_newline and lines else "")


def _locate(lines: list[str], hunk: _Hunk, hint: int, lowest: int, where: str) -> int:
    """Where the hunk's old lines sit: nearest the hint, else the only place in the file."""
    size = len(hunk.old)
    last = len(lines) - size
    if size == 0:
        return min(max(hint, lowest), len(lines))
    for delta in range(MAX_OFFSET + 1):
        for at in (hint - delta, hint + delta):
            if lowest <= at <= last and lines[at : at + size] == hunk.old:
                return at
    places = [at for at in range(lowest, last + 1) if lines[at : at + size] == hunk.old]
    if len(places) == 1:
        return places[0]
    if len(places) > 1:
        raise PatchError(f"{where} ({hunk.header}) matches {len(places)} places far from its line")
    raise PatchError(f"{where} ({hunk.header}) does not match the file: {_mismatch(lines, hunk)}")


def _mismatch(lines: list[str], hunk: _Hunk) -> str:
    """The first hunk line that differs, aligned at the file line its first line matches."""
    starts = [at for at, line in enumerate(lines) if line == hunk.old[0]]
    if not starts:
        return f"its first line {hunk.old[0]!r} is not in the file"
    at = min(starts, key=lambda start: abs(start - hunk.start))
    for offset, expected in enumerate(hunk.old):
        found = lines[at + offset] if at + offset < len(lines) else "<end of file>"
        if found != expected:
            return f"expected {expected!r} at line {at + offset + 1}, found {found!r}"
    return "it overlaps an earlier hunk"  # the whole block matched, but before `lowest`


def make_diff(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """The canonical unified diff between two file sets (sorted paths, `a/` and `b/` prefixes)."""
    parts: list[str] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path, ""), new.get(path, "")
        if before != after:
            hunks = difflib.unified_diff(_lines(before), _lines(after), f"a/{path}", f"b/{path}")
            parts.extend(_terminated(line) for line in hunks)
    return "".join(parts)


def _lines(text: str) -> list[str]:
    # Not str.splitlines: it also splits on form feeds and other characters Python allows inside
    # string literals, which would corrupt the diff.
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def _terminated(line: str) -> str:
    return line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
