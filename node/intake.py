"""The checks a record must pass against the records a node already holds before the node takes it
in: what the record schema cannot check because it needs a second record."""

from __future__ import annotations

from collections.abc import Callable

from node.trust import outcomes_match
from research_dag import (
    DERIVED_AUTHOR,
    Experiment,
    Header,
    Hypothesis,
    Pattern,
    Problem,
    Record,
    Verdict,
    Verification,
)

# A record is dated by its author's clock. Two bounds keep a stranger's clock from ordering
# what a node keeps, shows, samples and derives (docs/protocol.md, "Time"): a record dated
# more than MAX_AHEAD_MS past the receiver's clock is not taken yet (drop reason "ahead"; not
# charged, and sync brings it once its time has come), and an experiment dated more than
# MAX_SKEW_MS before a record it cites (its problem, parent, hypothesis, transcript, the
# patterns it applied) is refused as inconsistent: honest clocks differ by minutes, not hours.
MAX_AHEAD_MS = 10 * 60 * 1000
MAX_SKEW_MS = 60 * 60 * 1000

Lookup = Callable[[str], Record | None]
# A held record's header (None: not held), what the DAG keeps in memory: most checks need no
# more, and loading a whole record may read the store on the event loop.
Brief = Callable[[str], Header | None]


def refusal(record: Record, lookup: Lookup, brief: Brief) -> str | None:
    """Why `record` contradicts a record we hold, or None when it does not. `brief` answers
    kind and problem; `lookup` brings a whole record, used only where the check needs one
    (a problem's mutable files, a claim's outcome).

    A record naming one not held yet passes: the DAG is order-free, so the check happens
    again when it matters (`strategy_refusal` before a claim is queued or replayed).
    """
    if isinstance(record, Experiment):
        why = _dated_before(record, brief)
        if why is not None:
            return why
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
            if parent is not None and (parent.kind, parent.problem) != ("experiment",
                                                                       record.problem):
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
        if record.transcript is not None:  # its model calls (research_dag/transcripts.py)
            held = brief(record.transcript)
            if held is not None and (held.kind, held.problem) != ("transcript", record.problem):
                return (f"experiment {record.id}: its transcript {record.transcript} is not a"
                        " transcript of the same problem")
        for applied in record.applied or ():  # its outcome is attributed to these patterns
            kind = _kind(brief, applied)
            if kind is not None and kind != "pattern":
                return f"experiment {record.id}: it applied {applied}, a {kind}, not a pattern"
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
    elif isinstance(record, Pattern | Hypothesis | Verdict):
        return derived_refusal(record, brief)
    return None


def _dated_before(experiment: Experiment, brief: Brief) -> str | None:
    """Why `experiment` is dated more than MAX_SKEW_MS before a held record it cites (a copy
    of a peer's find dated 0 took its credit, and tests dated 0 decided a hypothesis before
    anyone tested it), or None."""
    cited = [experiment.problem, experiment.parent, experiment.hypothesis_id,
             experiment.transcript, *(experiment.applied or ())]
    for cited_id in cited:
        held = None if cited_id is None else brief(cited_id)
        if held is not None and experiment.created_ms + MAX_SKEW_MS < held.created_ms:
            return (f"experiment {experiment.id}: dated {experiment.created_ms}, before"
                    f" {held.kind} {held.id} that it cites ({held.created_ms})")
    return None


def derived_refusal(record: Pattern | Hypothesis | Verdict, brief: Brief) -> str | None:
    """Why a Pattern, Hypothesis or Verdict contradicts records we hold: each record it cites,
    if held, is of the kind its field names, and a derived one (author DERIVED_AUTHOR) whose
    dated records are all held carries the newest one's `created_ms` (docs/protocol.md,
    "Derived records"). Whether its other fields follow from what it cites is not checked
    here: no node uses a derived record it did not derive itself (node/knowledge.py)."""
    cited = cited_records(record)
    for field_name, kind, ids, _ in cited:
        for cited_id in ids:
            found = _kind(brief, cited_id)
            if found is not None and found != kind:
                return (f"{record.kind} {record.id}: its {field_name} {cited_id} is a {found},"
                        f" not a {kind}")
    if isinstance(record, Verdict):
        why = _tests_elsewhere(record, brief)
        if why is not None:
            return why
    if record.author != DERIVED_AUTHOR:
        return None
    headers = [brief(cited_id) for _, _, ids, dated in cited if dated for cited_id in ids]
    held = [header for header in headers if header is not None]
    if held and len(held) == len(headers):
        newest = max(header.created_ms for header in held)
        if record.created_ms != newest:
            return (f"{record.kind} {record.id}: created_ms {record.created_ms} is not its"
                    f" newest cited record's ({newest})")
    return None


def _tests_elsewhere(verdict: Verdict, brief: Brief) -> str | None:
    """A verdict's tests are experiments on its hypothesis's target problem: one citing another
    problem's can be derived by no node, whatever each trusts (headers only)."""
    hypothesis = brief(verdict.hypothesis)
    if hypothesis is None or hypothesis.kind != "hypothesis" or hypothesis.problem is None:
        return None
    for test in verdict.tests:
        held = brief(test)
        if held is not None and held.kind == "experiment" and held.problem != hypothesis.problem:
            return (f"verdict {verdict.id}: its test {test} is an experiment of problem"
                    f" {held.problem}, not of its hypothesis's {hypothesis.problem}")
    return None


def cited_records(
    record: Pattern | Hypothesis | Verdict,
) -> list[tuple[str, str, tuple[str, ...], bool]]:
    """(field, kind, ids, dated) for each field of a derived kind that cites records; `dated`:
    its records' newest `created_ms` is the derived record's (a pattern's scope problems are
    not: playbook/curator.py dates a pattern by its evidence and the snapshot it supersedes)."""
    if isinstance(record, Pattern):
        return [
            ("supporting", "experiment", tuple(record.supporting), True),
            ("contradicting", "experiment", tuple(record.contradicting), True),
            ("control", "experiment", tuple(record.control or ()), True),
            ("problems", "problem", tuple(record.problems or ()), False),
            ("supersedes", "pattern",
             () if record.supersedes is None else (record.supersedes,), True),
        ]
    if isinstance(record, Hypothesis):
        return [("problem", "problem", (record.problem,), True),
                ("pattern", "pattern", (record.pattern,), True)]
    return [
        ("hypothesis", "hypothesis", (record.hypothesis,), True),
        ("tests", "experiment", tuple(record.tests), True),
        ("control", "experiment", tuple(record.control), True),
    ]


def _kind(brief: Brief, record_id: str) -> str | None:
    found = brief(record_id)
    return None if found is None else found.kind


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
