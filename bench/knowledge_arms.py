"""Arms of bench_knowledge.py's leave-one-out beyond class priors: what one problem's runs say
of the operator families, of which knobs improve, and of where on a knob's range improvements
land (relative to its value), as priors for another run's search (node/mutators/search.py
`family_prior`, node/mutators/model.py `knob_prior` / `value_prior`).

Each kind is built from some problems' runs (records): from the held-out problem's own pool it
is an ORACLE (the most that kind of knowledge could say about it), from the other problems'
pools a TRANSFER. An arm is a function that sets the hook on a loop's Search before it runs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from node.mutators import family_of
from node.mutators.search import Search
from node.mutators.structure import Knob, Shapes
from research_dag import Experiment, Problem, Record, ResearchDag

Arm = Callable[[Search], None]
FAMILY_WEIGHT = 40.0  # pseudo-attempts per family a family prior adds to the bandit's counts
KNOB_CLIP = (0.1, 10.0)  # a knob's weight: its improvement rate over the problem's, clipped
VALUE_SHARE = 0.5  # share of the model's chosen knobs whose value the value prior draws
JITTER = 0.05  # relative spread around a drawn ratio (so a prior repeats no value exactly)


@dataclass
class Learned:
    """What runs on some problems say: per family (attempts, improved), per site (attempts,
    improved), and per affordance the ratios new / old of single-knob improving moves (and the
    new values of moves from 0)."""

    families: dict[str, list[int]] = field(default_factory=dict)
    sites: dict[str, list[int]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)
    from_zero: dict[str, list[float]] = field(default_factory=dict)
    improved: int = 0
    attempts: int = 0


def learn(records: Iterable[Record], problems: Iterable[Problem]) -> Learned:
    """Read the runs (records of `problems`) once."""
    held = list(records)
    dag = ResearchDag(held)
    shapes = Shapes()
    learned = Learned()
    for problem in problems:
        experiments = {e.id: e for e in dag.experiments(problem.id) if isinstance(e, Experiment)}
        for experiment in experiments.values():
            if experiment.parent is None:
                continue
            won = dag.is_finding(experiment)
            learned.improved += won
            learned.attempts += 1
            family = family_of(experiment.mutation_kind, experiment.mutator)
            if family is not None:
                _tally(learned.families, family, won)
            for change in experiment.changes or ():
                if change.site:
                    _tally(learned.sites, change.site, won)
            parent = experiments.get(experiment.parent)
            if won and parent is not None:
                _moves(learned, shapes, problem, parent, experiment)
    return learned


def _tally(counts: dict[str, list[int]], key: str, won: bool) -> None:
    tally = counts.setdefault(key, [0, 0])
    tally[0] += 1
    tally[1] += won


def _moves(learned: Learned, shapes: Shapes, problem: Problem, parent: Experiment,
           child: Experiment) -> None:
    """The ratio new / old of the one knob an improving child changed (same structure)."""
    before = shapes.of(dict(parent.strategy), problem.mutable)
    after = shapes.of(dict(child.strategy), problem.mutable)
    if before is None or after is None or before.key != after.key:
        return
    moved = [i for i, (old, new) in enumerate(zip(before.values, after.values, strict=True))
             if old != new]
    if len(moved) != 1:
        return
    index = moved[0]
    affordance = before.knobs[index].affordance
    old, new = before.values[index], after.values[index]
    if old == 0:
        learned.from_zero.setdefault(affordance, []).append(new)
    else:
        learned.ratios.setdefault(affordance, []).append(new / old)


def family_arm(learned: Learned, weight: float = FAMILY_WEIGHT) -> Arm:
    """The bandit starts from these families' rates (`weight` pseudo-attempts each)."""
    prior = {family: (weight, weight * won / tried)
             for family, (tried, won) in learned.families.items() if tried}

    def arm(search: Search) -> None:
        search.family_prior = dict(prior)

    return arm


def knob_arm(learned: Learned) -> Arm:
    """The model chooses knobs by importance times their site's improvement rate here over the
    problem's (sites are the problem's own: only an oracle can name them)."""
    base = (1 + learned.improved) / (2 + learned.attempts)

    def weight(knob: Knob) -> float:
        tried, won = learned.sites.get(knob.site, (0, 0))
        lift = (1 + won) / (2 + tried) / base
        return min(KNOB_CLIP[1], max(KNOB_CLIP[0], lift))

    def arm(search: Search) -> None:
        search.model.knob_prior = weight

    return arm


def value_arm(learned: Learned) -> Arm:
    """For VALUE_SHARE of the model's chosen knobs, a value at a ratio to the current one drawn
    from the improving moves' ratios of the knob's affordance (from 0: their new values)."""
    ratios = {a: sorted(r) for a, r in learned.ratios.items()}
    from_zero = {a: sorted(v) for a, v in learned.from_zero.items()}

    def draw(knob: Knob, current: float, rng: random.Random) -> float | None:
        if rng.random() >= VALUE_SHARE:
            return None
        spread = 1 + rng.gauss(0.0, JITTER)
        if current == 0:
            values = from_zero.get(knob.affordance)
            return None if not values else rng.choice(values) * spread
        choices = ratios.get(knob.affordance)
        if not choices:
            return None
        value = current * rng.choice(choices) * spread
        if knob.integer:
            value = float(round(value))
        return value if math.isfinite(value) else None

    def arm(search: Search) -> None:
        search.model.value_prior = draw

    return arm


KINDS: dict[str, Callable[[Learned], Arm]] = {
    "family": family_arm, "knobs": knob_arm, "values": value_arm}


def summary(learned: Learned) -> str:
    """One line: the families' rates and how many moves the value prior holds."""
    families = ", ".join(f"{f} {won}/{tried}" for f, (tried, won)
                         in sorted(learned.families.items()))
    moves = ", ".join(f"{a} {len(r)}" for a, r in sorted(learned.ratios.items()))
    return (f"improved {learned.improved}/{learned.attempts}; families {families}; "
            f"improving one-knob moves by affordance {moves or 'none'}")
