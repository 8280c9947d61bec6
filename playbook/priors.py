"""Mutation-kind priors: which kinds of change have paid off, as weights for choosing the next."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from research_dag import Experiment, Metric


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
