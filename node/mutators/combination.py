"""Combinations: the best strategy with another evaluation's improving move from the same
parent added, the knob-only way a swarm's round shares its other winners."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable

from node.mutators.memory import SearchMemory, Structure
from node.mutators.model import IMPORTANCE_WINDOW, Suggestion, set_knobs
from node.mutators.structure import Knob, Shape

MERGED = 4  # knobs a combination of several peers' moves sets at most
COMBINED = "add an improving move made from the same parent"
COMBINED_HYPOTHESIS = ("another evaluation from the best's parent improved with this move, which "
                       "the best does not include: the two improvements may add up")


def combination(
    memory: SearchMemory,
    structure: Structure,
    best_files: dict[str, str],
    shape: Shape,
    better: Callable[[float, float | None], bool],
    rng: random.Random,
    allowed: Callable[[Knob], bool],
    most: int = 1,
) -> Suggestion | None:
    """The best strategy with another evaluation's improving move added: an observation that
    beat its parent (of this structure) by changing knobs the best still holds at the parent's
    values. In a swarm, the nodes of one round all start from the same best, and the winners
    the adopted best did not include are each worth a step of their own: this composes them.
    Drawn with chance moves/siblings (the authors who evaluated from the same parents), then
    a move uniformly: each node draws with its own rng, so about one node tries each move. A
    move sets at most `most` knobs (the model's retune size: one named change); one more
    option sets the moves together (on distinct knobs, at most MERGED), a retune listing each."""
    tried = {observation.values for observation in structure.observations}
    moves: dict[tuple[float, ...], tuple[float, dict[int, float]]] = {}
    window = list(structure.observations)[-IMPORTANCE_WINDOW:]
    parents: set[str] = set()
    for observation in window:
        base, score = observation.base, observation.score
        if (base is None or score is None or observation.base_score is None
                or not math.isfinite(score) or not better(score, observation.base_score)):
            continue
        delta = {i: value for i, (value, old) in enumerate(
            zip(observation.values, base, strict=True)) if value != old}
        if not delta or len(delta) > most or any(
                shape.values[i] != base[i] or not allowed(shape.knobs[i]) for i in delta):
            continue  # the best moved that knob itself (or has it already), or may not
        values = list(shape.values)
        for index, value in delta.items():
            values[index] = value
        key = tuple(values)
        if key in tried:
            continue
        gain = abs(score - observation.base_score)
        if observation.parent is not None:
            parents.add(observation.parent)
        if key not in moves or gain > moves[key][0]:
            moves[key] = (gain, delta)
    if not moves:
        return None
    # Those who evaluated from the same parents (held experiments, data or not): about the
    # swarm's size, all of whom see the same moves. Each adds one with chance
    # moves/siblings, so each move is tried about once.
    siblings = sum(memory.siblings(parent) for parent in sorted(parents))
    options = [moves[key][1] for key in sorted(moves)]  # a fixed order: rng and records decide
    merged: dict[int, float] = {}  # the moves together, the largest gain first per knob
    for _, delta in sorted(moves.values(), key=lambda move: (-move[0], sorted(move[1].items()))):
        if len(merged) + len(delta) <= MERGED and not set(delta) & set(merged):
            merged.update(delta)
    if len(merged) > len(max(options, key=len)):
        values = list(shape.values)
        for index, value in merged.items():
            values[index] = value
        if tuple(values) not in tried:
            options.append(merged)
    if rng.random() >= len(options) / max(len(options), siblings):
        return None
    delta = rng.choice(options)
    suggestion = set_knobs(best_files, shape, delta)
    if suggestion is None:
        return None
    return dataclasses.replace(
        suggestion, description=f"{COMBINED}: {suggestion.description}")


__all__ = ["COMBINED", "COMBINED_HYPOTHESIS", "MERGED", "combination"]
