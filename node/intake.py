"""The checks a record must pass against the records a node already holds before the node takes it
in: what the record schema cannot check because it needs a second record."""

from __future__ import annotations

from collections.abc import Callable

from research_dag import Experiment, Hypothesis, Pattern, Problem, Record, Verification

Lookup = Callable[[str], Record | None]


def refusal(record: Record, lookup: Lookup) -> str | None:
    """Why `record` contradicts a record `lookup` finds, or None when it does not.

    A record naming one not held yet passes: the DAG is order-free, so the check happens
    again when it matters (`strategy_refusal` before a claim is queued or replayed).
    """
    if isinstance(record, Experiment):
        problem = lookup(record.problem)
        if problem is not None:
            if not isinstance(problem, Problem):
                return f"experiment {record.id}: its problem {record.problem} is a {problem.kind}"
            why = strategy_refusal(record, problem)
            if why is not None:
                return why
        if record.parent is not None:
            parent = lookup(record.parent)
            if parent is not None and (
                not isinstance(parent, Experiment) or parent.problem != record.problem
            ):
                return (
                    f"experiment {record.id}: its parent {record.parent} is not an experiment"
                    " of the same problem"
                )
    elif isinstance(record, Verification):
        claimed = lookup(record.experiment)
        if claimed is not None and not isinstance(claimed, Experiment):
            return f"verification {record.id}: {record.experiment} is a {claimed.kind}"
    elif isinstance(record, Hypothesis):
        problem, pattern = lookup(record.problem), lookup(record.pattern)
        if problem is not None and not isinstance(problem, Problem):
            return f"hypothesis {record.id}: its problem {record.problem} is a {problem.kind}"
        if pattern is not None and not isinstance(pattern, Pattern):
            return f"hypothesis {record.id}: its pattern {record.pattern} is a {pattern.kind}"
    return None


def strategy_refusal(experiment: Experiment, problem: Problem) -> str | None:
    """None when the experiment's files are exactly its problem's mutable files (what a replay
    stages and evaluates), else why not."""
    if experiment.problem != problem.id:
        return f"experiment {experiment.id} belongs to problem {experiment.problem}"
    if set(experiment.strategy) != set(problem.mutable):
        return (
            f"experiment {experiment.id}: its files {sorted(experiment.strategy)!r:.200} are not"
            f" the problem's mutable files {sorted(problem.mutable)!r:.200}"
        )
    return None
