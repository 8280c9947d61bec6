"""Adding one evaluated change to another strategy: the lines a move changed (parent -> child),
found once in the target exactly as they were in the parent, are replaced (a three-way merge
by lines; a conflict is no merge)."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping

from research_dag import MAX_SOURCE

CONTEXT = 2  # most unchanged lines each side of a changed block used to place it in the target
# Bounds on the work a peer's move can ask of a merge (docs/security.md, "Red team of today's
# changes"): difflib compares every line with every other on repeated lines (a 1,000-line
# move of two alternating lines took 18 s, 4,000 lines never finished), so the lines a move
# changed, between the parent's and the child's common first and last lines, are at most
# MAX_MOVED_LINES (a move is a small edit), and no file of the three is past MAX_LINES.
MAX_MOVED_LINES = 64
MAX_LINES = 20_000


def add_move(target: Mapping[str, str], parent: Mapping[str, str],
             child: Mapping[str, str]) -> dict[str, str] | None:
    """`target` with the change `parent` -> `child` added, every file alike; None when a block
    the move changed is not in the target as it was in the parent (the target moved those
    lines itself: a conflict), or when the move changes nothing the target lacks."""
    if set(parent) != set(child) or set(parent) != set(target):
        return None
    merged = dict(target)
    for path in sorted(parent):
        if parent[path] == child[path]:
            continue
        text = _add(target[path], parent[path], child[path])
        if text is None or len(text) > MAX_SOURCE:
            return None  # a conflict, or more than a record holds
        merged[path] = text
    return None if merged == dict(target) else merged


def _add(target: str, parent: str, child: str) -> str | None:
    old = parent.splitlines(keepends=True)
    new = child.splitlines(keepends=True)
    lines = target.splitlines(keepends=True)
    if max(len(old), len(new), len(lines)) > MAX_LINES:
        return None
    first = 0  # the common first lines, then the common last ones, left out of the diff
    while first < min(len(old), len(new)) and old[first] == new[first]:
        first += 1
    last = 0
    while last < min(len(old), len(new)) - first and old[-1 - last] == new[-1 - last]:
        last += 1
    if max(len(old), len(new)) - first - last > MAX_MOVED_LINES:
        return None  # not a small move: not merged
    edits: list[tuple[int, int, list[str]]] = []  # (start, end) in target -> new lines
    matcher = difflib.SequenceMatcher(
        None, old[first:len(old) - last], new[first:len(new) - last], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        i1, i2, j1, j2 = i1 + first, i2 + first, j1 + first, j2 + first
        start = _place(lines, old, i1, i2)
        if start is None:
            return None
        edits.append((start, start + (i2 - i1), new[j1:j2]))
    edits.sort(key=lambda edit: (edit[0], edit[1]))
    for earlier, later in itertools.pairwise(edits):
        if later[0] < earlier[1]:
            return None  # two blocks found overlapping in the target
    for start, end, replacement in reversed(edits):
        lines[start:end] = replacement
    return "".join(lines)


def _place(lines: list[str], old: list[str], i1: int, i2: int) -> int | None:
    """Where the parent's lines old[i1:i2] sit in the target: the block found exactly once,
    with as few neighbouring lines as make it unique (a weight's own line usually does; an
    insertion needs its neighbours); None when it is not there."""
    for context in range(CONTEXT + 1):
        before = old[max(0, i1 - context):i1]
        block = before + old[i1:i2] + old[i2:i2 + context]
        if not block or (context and len(block) == i2 - i1):
            continue  # nothing to find yet, or no neighbour to add
        found = _find(lines, block)
        if found is not None:
            return found + len(before)
    return None


def _find(lines: list[str], block: list[str]) -> int | None:
    """Where `block` occurs in `lines`, when it occurs exactly once."""
    if not block:
        return None
    size = len(block)
    hit = None
    for index in range(len(lines) - size + 1):
        if lines[index] == block[0] and lines[index:index + size] == block:
            if hit is not None:
                return None  # twice: not placed (and no need to look further)
            hit = index
    return hit
