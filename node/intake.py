"""The checks a record must pass against the records a node already holds before the node takes it
in: what the record schema cannot check because it needs a second record."""

from __future__ import annotations

from collections.abc import Callable

from node.trust import outcomes_match
from research_dag import Experiment, Hypothesis, Pattern, Problem, Record, Verification

Lookup = Callable[[str], Record | None]
# A held record's kind and problem (None: not held), from what the DAG keeps in memory: most
# checks need no more, and loading a whole record may read the store on the event loop.
Brief = Callable[[str], tuple[str, str | None] | None]


def refusal(record: Record, lookup: Lookup, brief: Brief) -> str | None:
    """Why `record` contradicts a record we hold, or None when it does not. `brief` answers
    kind and problem; `lookup` brings a whole record, used only where the check needs one
    (a problem's mutable files, a claim's outcome).

    A record naming one not held yet passes: the DAG is order-free, so the check happens
    again when it matters (`strategy_refusal` before a claim is queued or replayed).
    """
    if isinstance(record, Experiment):
        kind = _kind(brief, record.problem)
        if kind is not None and kind != "problem":
            return f"experiment {record.id}: its problem {record.problem} is a {kind}"
        problem = lookup(record.problem) if kind == "problem" else None
        if isinstance(problem, Problem):
            why = strategy_refusal(record, problem)
            if why is not None:
                return why
        if record.parent is not None:
            parent = brief(record.parent)
            if parent is not None and parent != ("experiment", record.problem):
                return (
                    f"experiment {record.id}: its parent {record.parent} is not an experiment"
                    " of the same problem"
                )
        if record.hypothesis_id is not None:
            kind = _kind(brief, record.hypothesis_id)
            if kind is not None and kind != "hypothesis":
                return (
                    f"experiment {record.id}: the hypothesis it tests, {record.hypothesis_id},"
                    f" is a {kind}"
                )
    elif isinstance(record, Verification):
        kind = _kind(brief, record.experiment)
        if kind is not None and kind != "experiment":
            return f"verification {record.id}: {record.experiment} is a {kind}"
        claimed = lookup(record.experiment) if kind == "experiment" else None
        if isinstance(claimed, Experiment) and (
            outcomes_match(claimed.outcome, record.outcome) != record.match
        ):
            return (
                f"verification {record.id}: match={record.match} contradicts its own outcome"
                " compared with the claim's"
            )
    elif isinstance(record, Hypothesis):
        of_problem, of_pattern = _kind(brief, record.problem), _kind(brief, record.pattern)
        if of_problem is not None and of_problem != "problem":
            return f"hypothesis {record.id}: its problem {record.problem} is a {of_problem}"
        if of_pattern is not None and of_pattern != "pattern":
            return f"hypothesis {record.id}: its pattern {record.pattern} is a {of_pattern}"
    elif isinstance(record, Pattern):
        for cited in (*record.supporting, *record.contradicting):
            kind = _kind(brief, cited)
            if kind is not None and kind != "experiment":
                return f"pattern {record.id}: it cites {cited}, a {kind}, as evidence"
    return None


def _kind(brief: Brief, record_id: str) -> str | None:
    found = brief(record_id)
    return None if found is None else found[0]


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
