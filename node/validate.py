"""Dry runs before a problem is published: the baseline runs twice in the sandbox with an
identical outcome and fits its budget with headroom."""

from __future__ import annotations

from typing import Any

from node.problem import baseline_files
from research_dag import Problem
from sandbox import Evaluator, Runtime

HEADROOM = 0.5  # the baseline may use at most half of each phase's fuel budget


class DryRunFailed(Exception):
    """The package loads but is not fit to publish; the message says why and what to change."""


def dry_run(runtime: Runtime, problem: Problem) -> dict[str, Any]:
    files = baseline_files(problem)
    with Evaluator(runtime, problem) as evaluator:
        first = evaluator.evaluate(files)
        second = evaluator.evaluate(files)
    if first.status != "ok":
        tail = first.stderr_tail.strip().splitlines()[-3:]
        raise DryRunFailed(
            f"the baseline strategy does not evaluate: {first.status}"
            + (f" ({' | '.join(tail)})" if tail else "")
            + "; debug it with `swarm eval` on the package"
        )
    if first != second:
        raise DryRunFailed(
            "the baseline gave different outcomes on two identical runs "
            f"(score {first.score} vs {second.score}, fuel {first.fuel} vs {second.fuel}); "
            "the evaluator or strategy must not depend on the clock, unseeded randomness "
            "or file metadata"
        )
    limit = problem.budget.fuel * HEADROOM
    used = max(first.strategy_fuel, first.evaluator_fuel)
    if used > limit:
        raise DryRunFailed(
            f"the baseline uses {used:,} fuel in one phase; keep it under half the budget "
            f"({problem.budget.fuel:,}) so mutations have headroom: raise [budget] fuel"
        )
    return {"status": first.status, "score": first.score, "fuel": used,
            "budget_fuel": problem.budget.fuel}
