"""Composing a round's improvements: the moves that beat the best's parent besides the best (in
a swarm, the other winners of the round the best won) added to the best, each alone and the
largest ones together, as one named change listing each."""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from node.mutators.memory import COMBINE, Move, SearchMemory
from node.mutators.merge import add_move
from node.mutators.patch import make_diff
from research_dag import MAX_SOURCE
from research_dag import Change as Described

MOST_MOVES = 6  # applicable moves considered, the largest gains first
# The share of a round's nodes that compose (the rest explore). 0: none, the default, measured
# (bench/RESULTS.md, "Issue 14: 16 nodes, follow-up"): with the model's joint retunes, a half,
# a quarter and an eighth of 16 nodes composing each made the swarm slower on finance_factors;
# with one-knob proposals a half made it faster. The harness sets it.
SHARE = 0.0
MOST_CHANGES = 8  # research_dag's bound on Experiment.changes (more: not described)
MAX_DESCRIPTION = 1000
COMPOSED = "add improving moves made from the same parent"
COMPOSED_HYPOTHESIS = ("other evaluations from the best's parent improved with these moves, which "
                       "the best does not include: the improvements may add up")


@dataclass(frozen=True)
class Composition:
    """The best with some moves added: the files, and the moves in the order added."""

    files: dict[str, str]
    moves: tuple[Move, ...]

    @property
    def kind(self) -> str:
        return COMBINE

    @property
    def description(self) -> str:
        text = f"{COMPOSED}: " + "; ".join(
            move.description.removeprefix(f"{COMPOSED}: ") for move in self.moves)
        return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"

    @property
    def changes(self) -> tuple[Described, ...]:
        changes = tuple(change for move in self.moves for change in move.changes)
        described = all(move.changes for move in self.moves) and len(changes) <= MOST_CHANGES
        return changes if described else ()


def compositions(memory: SearchMemory, best: dict[str, str],
                 tried: Callable[[dict[str, str]], bool]) -> list[Composition]:
    """Every composition worth an evaluation, none evaluated yet: each applicable move alone
    and the largest ones together (two, three, ... of them, in order of gain), in turn. A move
    is applicable when the values (or, across structures, the lines) it changed are in the
    best as they were in its parent."""
    lineage = memory.lineage(best)
    if lineage is None:
        return []
    best_id, _, base = lineage
    moves: list[tuple[Move, dict[str, str], dict[str, str]]] = []
    singles: list[Composition] = []
    for move in sorted(memory.moves_from(base), key=lambda m: (-m.gain, m.child)):
        child, parent = memory.files(move.child), memory.files(move.parent)
        if move.child == best_id or child is None or parent is None:
            continue
        files = _add(memory, best, parent, child)
        if (files is None or tried(files) or any(files == o.files for o in singles)
                or not _recordable(best, files)):
            continue  # conflicts with the best, was evaluated (it did not add up), or too big
        moves.append((move, parent, child))
        singles.append(Composition(files, (move,)))
        if len(moves) >= MOST_MOVES:
            break
    together, added, combined = dict(best), [], []
    for move, parent, child in moves:
        files = _add(memory, together, parent, child)
        if files is None or not _recordable(best, files):
            continue  # conflicts with a larger move already added, or too big together
        together = files
        added.append(move)
        if len(added) >= 2 and not tried(together):
            combined.append(Composition(dict(together), tuple(added)))
    # In turn: the largest move alone, the two largest together, the second alone, ...
    return [option for pair in itertools.zip_longest(singles, combined) for option in pair
            if option is not None]


def _recordable(best: dict[str, str], files: dict[str, str]) -> bool:
    """Whether an experiment can hold the composition (each file and its diff from the best
    within MAX_SOURCE). A peer's move of a 130,000-digit literal added to a best holding one
    was refused by the loop as too big, yet offered again every step (never evaluated, so
    never tried) until the loop stopped: mutator_exhausted."""
    return (all(len(text) <= MAX_SOURCE for text in files.values())
            and len(make_diff(best, files)) <= MAX_SOURCE)


def _add(memory: SearchMemory, target: dict[str, str], parent: dict[str, str],
         child: dict[str, str]) -> dict[str, str] | None:
    """`target` with the move parent -> child added: knob by knob when the three share a
    structure (two knobs on one line are two moves), else line by line (merge.py)."""
    shapes = [memory.shape(files) for files in (target, parent, child)]
    if any(shape is None for shape in shapes) or len({s.key for s in shapes if s}) != 1:
        return add_move(target, parent, child)
    now, before, after = (shape for shape in shapes if shape is not None)
    moved = [i for i, (old, new) in enumerate(zip(before.values, after.values, strict=True))
             if old != new]
    if not moved or any(now.values[i] != before.values[i] for i in moved):
        return None  # nothing to add, or the target moved that knob itself
    merged = dict(target)
    for path in sorted({now.knobs[i].path for i in moved}):
        data = target[path].encode("utf-8")
        for i in sorted((i for i in moved if now.knobs[i].path == path), reverse=True):
            knob = now.knobs[i]
            data = data[: knob.start] + after.knobs[i].text.encode("utf-8") + data[knob.end:]
        merged[path] = data.decode("utf-8")
    return merged


def assign(options: list[Composition], authors: set[str], me: str, salt: str,
           rng: random.Random) -> Composition | None:
    """This node's composition, or None (it searches as usual). The authors who evaluated
    from the best's parent (about the swarm, all holding the same moves) share the options
    out without a message: ordered by a hash of each id and the best's id (a new order
    every round), the author of rank r takes option r; at most SHARE of them compose, the
    others explore. A node that is not among them draws with chance options/authors."""
    share = options[: int(len(authors) * SHARE)]
    if not share:
        return None
    if me not in authors:
        return draw(share, len(authors), rng)
    order = sorted(authors, key=lambda author: hashlib.sha256(
        f"{salt}/{author}".encode()).digest())
    rank = order.index(me)
    return share[rank] if rank < len(share) else None


def draw(options: list[Composition], siblings: int, rng: random.Random) -> Composition | None:
    """One composition for this node, or None: each of the `siblings` nodes evaluating from
    the same parent takes one with chance options/siblings, so that about one node tries each.
    Each node draws with its own rng."""
    if not options or rng.random() >= len(options) / max(len(options), siblings):
        return None
    return rng.choice(options)
