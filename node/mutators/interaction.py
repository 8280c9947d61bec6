"""Switch interactions: two switches that each made the strategy worse when toggled alone are
toggled together, a change no sequence of kept single changes can reach.

One-factor-at-a-time search misses interactions: on tiny_training, STANDARDIZE alone and
ADD_SQUARES alone each raise the validation loss (squares of raw features blow up the
gradient; standardising alone loses scale), both together lower it from 0.69 to 0.41; every
single toggle was discarded and the loop stayed at 0.69 (bench/RESULTS.md, "Issue 14: switch
interactions"). The structural family proposes such a pair from the best when both of its
switches were toggled alone in this structure without improving, at most PAIR_TRIES times a
pair and never again once the pair improved (toggling it back is no new interaction), so it
costs a few evaluations a structure."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable

from node.mutators.memory import SearchMemory
from node.mutators.model import IMPORTANCE_WINDOW, Suggestion, set_knobs
from node.mutators.operators import TOGGLE_BOOL
from node.mutators.structure import Knob, Shape

PAIRS = True  # False: never (bench/bench_search.py --no-pairs measures it)
# Screening: each switch is toggled alone once from every setting of the switches the best
# reaches, before the bandit draws (bench/bench_search.py --no-screen measures it).
SCREEN = True
SCREEN_HYPOTHESIS = ("screening: a switch changes what the values mean, so each is tried once "
                     "in this setting of the switches before values are tuned further")
PAIR_TRIES = 2  # evaluations of one pair of switches toggled together, per structure
KIND = f"structural:{TOGGLE_BOOL}+{TOGGLE_BOOL}"
HYPOTHESIS = ("each of these switches made the strategy worse when toggled alone; together "
              "they may interact (a change no sequence of kept single changes reaches)")

Better = Callable[[float, float], bool]


def switch_pair(memory: SearchMemory, files: dict[str, str], rng: random.Random,
                better: Better, allowed: Callable[[Knob], bool],
                ) -> tuple[Shape, Suggestion] | None:
    """A pair of switches of the best strategy `files`, toggled together, whose single toggles
    in this structure only failed to improve and that was tried fewer than PAIR_TRIES times
    here; None when there is none (or each such pair is already evaluated from this best)."""
    shape = memory.shape(files)
    structure = None if shape is None else memory.structures.get(shape.key)
    if shape is None or structure is None:
        return None
    switches = {index for index, knob in enumerate(shape.knobs) if knob.switch and allowed(knob)}
    if len(switches) < 2:
        return None
    failed: set[int] = set()
    won: set[int] = set()
    pairs: Counter[frozenset[int]] = Counter()
    for observation in list(structure.observations)[-IMPORTANCE_WINDOW:]:
        base, base_score = observation.base, observation.base_score
        if base is None or base_score is None:
            continue
        moved = frozenset(index for index, (value, old)
                          in enumerate(zip(observation.values, base, strict=True))
                          if value != old)
        if not moved or not moved <= switches or len(moved) > 2:
            continue
        score = observation.score
        improved = score is not None and math.isfinite(score) and better(score, base_score)
        if len(moved) == 2:
            pairs[moved] += PAIR_TRIES if improved else 1  # a pair that won is not undone
        elif improved:
            won |= moved
        else:
            failed |= moved
    options = [pair for pair in itertools.combinations(sorted(failed - won), 2)
               if pairs[frozenset(pair)] < PAIR_TRIES]
    rng.shuffle(options)
    for first, second in options:
        values = {index: 1.0 - shape.values[index] for index in (first, second)}
        suggestion = set_knobs(files, shape, values)
        if suggestion is not None and not memory.tried(suggestion.files):
            return shape, suggestion
    return None


def screen(memory: SearchMemory, files: dict[str, str], rng: random.Random,
           allowed: Callable[[Knob], bool], searchers: int = 1,
           ) -> tuple[Shape, Suggestion] | None:
    """One switch of the best strategy `files` toggled alone, when no evaluation in this
    structure toggled that switch alone from a parent whose switches were set as the best's
    are; None when every switch was (or the best has none). With `searchers` > the switches
    left, each node screens with chance left / searchers. In a swarm's first rounds a node's
    data holds only its own attempts, so every node screens there (the same toggles): measured
    better than sharing them out (docs/search.md "Switches first")."""
    shape = memory.shape(files)
    structure = None if shape is None else memory.structures.get(shape.key)
    if shape is None or structure is None:
        return None
    switches = [index for index, knob in enumerate(shape.knobs) if knob.switch and allowed(knob)]
    if not switches:
        return None
    setting = tuple(shape.values[index] for index in switches)
    done: set[int] = set()
    for observation in list(structure.observations)[-IMPORTANCE_WINDOW:]:
        base = observation.base
        if base is None or tuple(base[index] for index in switches) != setting:
            continue
        moved = [index for index in switches if observation.values[index] != base[index]]
        if len(moved) == 1:
            done.add(moved[0])
    left = [index for index in switches if index not in done]
    if not left or (searchers > len(left) and rng.random() >= len(left) / searchers):
        return None
    rng.shuffle(left)
    for index in left:
        suggestion = set_knobs(files, shape, {index: 1.0 - shape.values[index]})
        if suggestion is not None and not memory.tried(suggestion.files):
            return shape, suggestion
    return None


__all__ = ["HYPOTHESIS", "KIND", "PAIRS", "PAIR_TRIES", "SCREEN", "SCREEN_HYPOTHESIS", "screen",
           "switch_pair"]
