"""Priors for choosing the next change: per mutation kind from this problem's history, and per
change class ("operation:affordance") from the swarm's live patterns (`Knowledge`), which also
hands a loop the open hypotheses it may test."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from playbook.affordances import AffordanceSite
from research_dag import (
    Affordance,
    Experiment,
    Hypothesis,
    Metric,
    Operation,
    Pattern,
    Qualifier,
)

CLASS_FLOOR = 0.25  # no class with a site starves, however its pattern scored
CLASS_CAP = 8.0  # nor does one pattern take every proposal
MAX_GUIDANCE = 6  # pattern lines shown to an LLM mutator
MAX_GUIDANCE_TEXT = 300  # characters of each
# The ordinary proposals' improvement rate a pattern's success rate is compared with when the
# Knowledge does not say (the offline mutator's on the bundled examples is of this order).
BASE_RATE = 0.1
# A cell's (a class with a qualifier) success rate is shrunk toward its class's by this many
# pseudo-attempts: a cell of few attempts says little beyond its class (docs/playbook.md).
CELL_SHRINK = 8


@dataclass(frozen=True)
class Knowledge:
    """What a loop may use: the live patterns this node derived (best first) and the open
    hypotheses it derived for the loop's problem. `base_rates`: pattern id -> the improvement
    rate of other classes on its problems (its control), when the curator gives it."""

    patterns: tuple[Pattern, ...] = ()
    hypotheses: tuple[Hypothesis, ...] = ()
    base_rates: dict[str, float] = field(default_factory=dict)


NOTHING_KNOWN = Knowledge()


@dataclass(frozen=True)
class PlannedChange:
    """A hypothesis's change, as a mutator is told to make it: `operation` on `affordance` at
    one of `sites` (any site of that class when empty)."""

    hypothesis_id: str
    operation: Operation
    affordance: Affordance
    sites: tuple[str, ...]
    text: str
    qualifier: Qualifier | None = None  # the cell below the class, when the hypothesis names it

    @property
    def change_class(self) -> str:
        return f"{self.operation}:{self.affordance}"

    @property
    def change_cell(self) -> str:
        """What the tests make: the class, with the qualifier when there is one."""
        suffix = "" if self.qualifier is None else f"/{self.qualifier}"
        return self.change_class + suffix


def planned_change(hypothesis: Hypothesis) -> PlannedChange | None:
    """The change a hypothesis plans; None for one made before hypotheses named a class."""
    if hypothesis.operation is None or hypothesis.affordance is None:
        return None
    return PlannedChange(
        hypothesis.id,
        hypothesis.operation,
        hypothesis.affordance,
        tuple(hypothesis.sites or ()),
        _one_line(hypothesis.text, MAX_GUIDANCE_TEXT),
        hypothesis.qualifier,
    )


def class_weights(
    knowledge: Knowledge, affordances: Sequence[AffordanceSite]
) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
    """Weights over the change classes and cells this strategy affords, and the patterns
    behind each.

    A class's weight is its best live pattern's smoothed success rate over the base rate (its
    control's, else BASE_RATE), within [CLASS_FLOOR, CLASS_CAP]; classes without a pattern
    keep 1.0 and are left out. A cell's (a class with a qualifier: "toggle:switch/on") is its
    live pattern's rate shrunk toward its class's (the class's live pattern, else the base
    rate) by CELL_SHRINK attempts, so a cell of little evidence weighs about as its class
    does; a site whose cell has no weight takes its class's (the offline mutator). Patterns
    learned on other problems count wherever this strategy has the affordance: that is how a
    problem starts from the swarm's playbook, not cold.
    """
    present = {cls for site in affordances for cls in (*site.change_classes, *site.cells)}
    live = [p for p in knowledge.patterns if p.status == "live" and p.mutation_kind in present]
    rates: dict[str, float] = {}  # a class's smoothed rate, its cells' prior
    for pattern in live:
        if pattern.qualifier is None:
            wins, tries = _counts(pattern)
            rates.setdefault(pattern.mutation_kind, (wins + 1) / (tries + 2))
    weights: dict[str, float] = {}
    sources: dict[str, tuple[str, ...]] = {}
    for pattern in live:
        cls = pattern.mutation_kind
        sources[cls] = (*sources.get(cls, ()), pattern.id)
        if cls in weights:
            continue  # best first: the first live pattern of a class sets its weight
        wins, tries = _counts(pattern)
        base = max(knowledge.base_rates.get(pattern.id, BASE_RATE), 0.01)
        if pattern.qualifier is None:
            rate = (wins + 1) / (tries + 2)
        else:
            prior = rates.get(cls.partition("/")[0], base)
            rate = (wins + CELL_SHRINK * prior) / (tries + CELL_SHRINK)
        weights[cls] = min(CLASS_CAP, max(CLASS_FLOOR, rate / base))
    return weights, sources


def _counts(pattern: Pattern) -> tuple[int, int]:
    wins = len(pattern.supporting)
    return wins, wins + len(pattern.contradicting)


def pattern_guidance(knowledge: Knowledge, limit: int = MAX_GUIDANCE) -> tuple[str, ...]:
    """The live patterns' statements for an LLM mutator, best first, one bounded line each."""
    lines = []
    for pattern in knowledge.patterns:
        if pattern.status != "live":
            continue
        wins, tries = len(pattern.supporting), len(pattern.supporting) + len(pattern.contradicting)
        line = f"pattern ({pattern.mutation_kind}, {wins}/{tries} improved): {pattern.text}"
        lines.append(_one_line(line, MAX_GUIDANCE_TEXT))
        if len(lines) >= limit:
            break
    return tuple(lines)


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class KindStats:
    kind: str
    tries: int
    wins: int
    mean_delta: float  # mean improvement of the wins, in the metric's direction (>= 0)

    @property
    def success_rate(self) -> float:
        return self.wins / self.tries if self.tries else 0.0


def kind_stats(
    experiments: Iterable[Experiment], scores: dict[str, float | None], metric: Metric
) -> dict[str, KindStats]:
    """Per mutation kind: tries, wins (strictly beat the parent) and mean winning delta.

    `scores` maps experiment id -> score (None when not ok), so parents can be looked up.
    """
    tries: dict[str, int] = {}
    wins: dict[str, int] = {}
    deltas: dict[str, float] = {}
    for experiment in experiments:
        if experiment.parent is None:
            continue
        kind = experiment.mutation_kind
        tries[kind] = tries.get(kind, 0) + 1
        score = experiment.outcome.score if experiment.outcome.status == "ok" else None
        parent_score = scores.get(experiment.parent)
        if score is None or parent_score is None or not metric.better(score, parent_score):
            continue
        wins[kind] = wins.get(kind, 0) + 1
        deltas[kind] = deltas.get(kind, 0.0) + abs(score - parent_score)
    return {
        kind: KindStats(
            kind, count, wins.get(kind, 0), deltas.get(kind, 0.0) / max(1, wins.get(kind, 0))
        )
        for kind, count in tries.items()
    }


def kind_weights(stats: dict[str, KindStats], floor: float = 0.25) -> dict[str, float]:
    """Weights around 1.0 from smoothed success rates; never below `floor`, so every kind
    keeps being explored (a kind that failed early may work later on the new best)."""
    if not stats:
        return {}
    smoothed = {kind: (s.wins + 1) / (s.tries + 2) for kind, s in stats.items()}
    mean = sum(smoothed.values()) / len(smoothed)
    return {kind: max(floor, value / mean) for kind, value in smoothed.items()}


def guidance_lines(stats: dict[str, KindStats], limit: int = 6) -> tuple[str, ...]:
    """Short, readable lines about what has worked on this problem, best kinds first."""
    ranked = sorted(stats.values(), key=lambda s: (-s.success_rate, -s.tries, s.kind))
    lines = []
    for item in ranked[:limit]:
        line = f"{item.kind}: {item.wins}/{item.tries} attempts improved the score"
        if item.wins:
            line += f" (mean gain {item.mean_delta:.4g})"
        lines.append(line)
    return tuple(lines)
