"""What the DAG's index keeps of a record: the edges its references make ("source <rel> target",
`edges_of`) and its header (`header_of`); and a lineage's depth read from headers alone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

from research_dag.codec import Record
from research_dag.derived import Hypothesis, Pattern, Verdict
from research_dag.index import Header
from research_dag.records import Experiment, Problem, Verification
from research_dag.transcripts import Transcript

# Every edge reads "source <rel> target".
Relation: TypeAlias = Literal[
    "has_experiment",  # problem -> experiment (experiment.problem)
    "has_child",  # parent experiment -> child experiment (experiment.parent)
    "verified_by",  # experiment -> verification (verification.experiment)
    "supports",  # finding -> pattern (pattern.supporting)
    "contradicts",  # experiment -> pattern (pattern.contradicting)
    "suggests",  # pattern -> hypothesis (hypothesis.pattern)
    "targets",  # hypothesis -> problem (hypothesis.problem)
    "tested_by",  # hypothesis -> experiment (experiment.hypothesis_id)
    "applied_in",  # pattern -> experiment (experiment.applied)
    "supersedes",  # pattern -> the pattern it updates (pattern.supersedes)
    "decided_by",  # hypothesis -> verdict (verdict.hypothesis)
    "transcribed_in",  # experiment -> its model calls' transcript (experiment.transcript)
]


def edges_of(record: Record) -> list[tuple[str, str, Relation]]:
    """The edges a record adds: its references to other records, each "source <rel> target"."""
    me = record.id
    if isinstance(record, Experiment):
        edges: list[tuple[str, str, Relation]] = [(record.problem, me, "has_experiment")]
        if record.parent is not None:
            edges.append((record.parent, me, "has_child"))
        if record.hypothesis_id is not None:
            edges.append((record.hypothesis_id, me, "tested_by"))
        edges.extend((pattern, me, "applied_in") for pattern in record.applied or ())
        if record.transcript is not None:
            edges.append((me, record.transcript, "transcribed_in"))
        return edges
    if isinstance(record, Verification):
        return [(record.experiment, me, "verified_by")]
    if isinstance(record, Pattern):
        supports: list[tuple[str, str, Relation]] = [(s, me, "supports") for s in record.supporting]
        supports += [(c, me, "contradicts") for c in record.contradicting]
        if record.supersedes is not None:
            supports.append((me, record.supersedes, "supersedes"))
        return supports
    if isinstance(record, Hypothesis):
        return [(record.pattern, me, "suggests"), (me, record.problem, "targets")]
    if isinstance(record, Verdict):
        return [(record.hypothesis, me, "decided_by")]
    return []

def header_of(record: Record) -> Header:
    """What the DAG's index keeps of `record`."""
    if isinstance(record, Experiment):
        return Header(record.id, record.kind, record.created_ms, record.author, record.problem,
                      record.parent, _ok_score(record), frozenset(record.strategy))
    if isinstance(record, Hypothesis | Transcript):
        return Header(record.id, record.kind, record.created_ms, record.author, record.problem)
    if isinstance(record, Problem):
        return Header(record.id, record.kind, record.created_ms, record.author, record.id)
    return Header(record.id, record.kind, record.created_ms, record.author)


def _ok_score(experiment: Experiment) -> float | None:
    return experiment.outcome.score if experiment.outcome.status == "ok" else None


def lineage_depth(headers: Iterable[Header]) -> int:
    """The longest chain of these experiments, parent to child (a baseline alone is 1), from
    their headers alone."""
    parent_of = {h.id: h.parent for h in headers}
    known: dict[str, int] = {}
    for start in parent_of:
        chain: list[str] = []
        current: str | None = start
        while current is not None and current in parent_of and current not in known:
            chain.append(current)
            current = parent_of[current]
            if len(chain) > len(parent_of):  # ids are hashes, so never; bounded anyway
                break
        base = 0 if current is None else known.get(current, 0)
        for offset, record_id in enumerate(reversed(chain), start=1):
            known[record_id] = base + offset
    return max(known.values(), default=0)
