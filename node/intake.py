"""The checks a record must pass against the records a node already holds before the node takes it
in: what the record schema cannot check because it needs a second record."""

from __future__ import annotations

from collections.abc import Callable

from node.trust import outcomes_match
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
        if record.hypothesis_id is not None:
            hypothesis = lookup(record.hypothesis_id)
            if hypothesis is not None and not isinstance(hypothesis, Hypothesis):
                return (
                    f"experiment {record.id}: the hypothesis it tests, {record.hypothesis_id},"
                    f" is a {hypothesis.kind}"
                )
    elif isinstance(record, Verification):
        claimed = lookup(record.experiment)
        if claimed is not None and not isinstance(claimed, Experiment):
            return f"verification {record.id}: {record.experiment} is a {claimed.kind}"
        if claimed is not None and outcomes_match(claimed.outcome, record.outcome) != record.match:
            return (
                f"verification {record.id}: match={record.match} contradicts its own outcome"
                " compared with the claim's"
            )
    elif isinstance(record, Hypothesis):
        problem, pattern = lookup(record.problem), lookup(record.pattern)
        if problem is not None and not isinstance(problem, Problem):
            return f"hypothesis {record.id}: its problem {record.problem} is a {problem.kind}"
        if pattern is not None and not isinstance(pattern, Pattern):
            return f"hypothesis {record.id}: its pattern {record.pattern} is a {pattern.kind}"
    elif isinstance(record, Pattern):
        for cited in (*record.supporting, *record.contradicting):
            found = lookup(cited)
            if found is not None and not isinstance(found, Experiment):
                return f"pattern {record.id}: it cites {cited}, a {found.kind}, as evidence"
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
