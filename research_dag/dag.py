"""The Research DAG: a grow-only, order-free graph of records and the queries nodes ask of it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeAlias, TypeVar

from research_dag.records import (
    Experiment,
    Hypothesis,
    Metric,
    Pattern,
    Problem,
    Record,
    RecordBase,
    Verification,
)

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
]
Snapshot: TypeAlias = tuple[frozenset[str], frozenset[tuple[str, str, str]]]

SUMMARY_CHARS = 80
_R = TypeVar("_R", bound=RecordBase)


class ResearchDag:
    """Records as nodes, references as edges; the state depends only on the set of records added.

    An edge may name an id not seen yet (a child arrived before its parent); the id stays a bare
    node until its record arrives, so any arrival order or duplication ends in the same graph.
    """

    def __init__(self, records: Iterable[Record] = ()) -> None:
        # Imported here: networkx costs ~0.2 s and `swarm --help` imports research_dag.
        import networkx as nx

        # networkx is untyped; it stays behind this class and every value read out is re-typed.
        self._indexed: Any = nx.MultiDiGraph()
        self._unindexed: list[Record] = []  # added, not yet in the graph (see `_graph`)
        self._records: dict[str, Record] = {}
        self._problems: list[Problem] = []  # few, and asked for often (every sync summary)
        for record in records:
            self.add(record)

    @property
    def _graph(self) -> Any:
        """The graph, brought up to date. Records enter it at the first query after they were
        added, not in `add`: a swarm node takes in every peer's records but queries the graph
        rarely, and indexing (~40 us a record in networkx) was a fifth of a large simulation's
        CPU. Records enter in the order they were added, so the graph is the same either way."""
        if self._unindexed:
            pending, self._unindexed = self._unindexed, []
            graph = self._indexed
            for record in pending:
                graph.add_node(record.id)
                for source, target, rel in _edges_of(record):
                    graph.add_edge(source, target, key=rel)
        return self._indexed

    # ---- growing -------------------------------------------------------------------------

    def add(self, record: Record) -> bool:
        """Add one record and its edges; True if its id was new (adding again changes nothing).

        Ids leave out signatures, so a copy with another signature is the same record and the
        first copy stays: callers check signatures before adding.
        """
        record_id = record.id
        if record_id in self._records:
            return False
        self._records[record_id] = record
        self._unindexed.append(record)
        if isinstance(record, Problem):
            self._problems.append(record)
        return True

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._records

    def __len__(self) -> int:
        return len(self._records)

    def get(self, record_id: str) -> Record | None:
        return self._records.get(record_id)

    def ids(self) -> set[str]:
        """The ids of every record held (unsorted: `records` sorts, which costs O(n log n))."""
        return set(self._records)

    def ids_since(self, count: int) -> list[str]:
        """The ids of the records added after the first `count`, in the order they were added
        (records are never removed, so a caller keeping `len(self)` sees only the new ones)."""
        return list(itertools.islice(self._records, count, None))

    def records(self, kind: str | None = None) -> list[Record]:
        """Records (of one kind, if given) ordered by created_ms, then id."""
        chosen = (r for r in self._records.values() if kind is None or r.kind == kind)
        return sorted(chosen, key=_order)

    def missing(self) -> set[str]:
        """Ids that present records refer to but whose records have not arrived (sync asks)."""
        return {str(node) for node in self._graph.nodes if node not in self._records}

    def snapshot(self) -> Snapshot:
        """Order-free state for equality: (ids with records, (source, target, rel) edges)."""
        edges = frozenset((str(u), str(v), str(k)) for u, v, k in self._graph.edges(keys=True))
        return frozenset(self._records), edges

    # ---- queries -------------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        return sorted(self._problems, key=_order)

    def experiments(self, problem_id: str) -> list[Experiment]:
        """The problem's experiments; once the problem is held, only those consistent with it.

        A record that names one not held yet is taken in unchecked (the DAG is order-free), so
        a claim naming files the problem does not declare, or a parent of another problem, can
        precede its problem: it stays stored but is never counted, ranked or shown as a best.
        """
        found = self._of_kind(Experiment, self._linked(problem_id, "has_experiment"))
        problem = self._records.get(problem_id)
        if not isinstance(problem, Problem):
            return found
        return [e for e in found if self._fits(e, problem)]

    def _fits(self, experiment: Experiment, problem: Problem) -> bool:
        if set(experiment.strategy) != set(problem.mutable):
            return False
        parent = None if experiment.parent is None else self._records.get(experiment.parent)
        return parent is None or (
            isinstance(parent, Experiment) and parent.problem == experiment.problem
        )

    def best(
        self, problem_id: str, verified: Callable[[Experiment], bool] | None = None
    ) -> Experiment | None:
        """The ok, scored experiment with the best score among those `verified` accepts; ties go
        to the earliest, then least id.

        A DAG holds peers' claims as they made them, forged ones included: anything that shows
        a best to a person passes the trust ledger's `verified` (node/trust.py). Only a solo
        store, where every record is the node's own, may leave it out.
        """
        problem = self._records.get(problem_id)
        if not isinstance(problem, Problem):
            return None
        best: Experiment | None = None
        for experiment in self.experiments(problem_id):
            score = _ok_score(experiment)
            if (
                score is not None
                and problem.metric.better(score, _score_of(best))
                and (verified is None or verified(experiment))
            ):
                best = experiment
        return best

    def lineage(self, experiment_id: str) -> list[Experiment]:
        """The chain of experiments from the oldest known ancestor (first) to this one (last)."""
        chain: list[Experiment] = []
        current = self._records.get(experiment_id)
        seen: set[str] = set()
        while isinstance(current, Experiment) and current.id not in seen:
            seen.add(current.id)
            chain.append(current)
            current = self._records.get(current.parent) if current.parent else None
        chain.reverse()
        return chain

    def children(self, record_id: str, rel: Relation | None = None) -> list[Record]:
        """Present records this record's outgoing edges lead to (of one relation, if given)."""
        found = self._linked(record_id, rel)
        return sorted((self._records[i] for i in found if i in self._records), key=_order)

    def is_finding(self, experiment: Experiment) -> bool:
        """Ok and strictly better than its known, ok, scored parent, in the problem's direction."""
        metric = self._metric(experiment.problem)
        score = _ok_score(experiment)
        if metric is None or score is None or experiment.parent is None:
            return False
        parent = self._records.get(experiment.parent)
        if not isinstance(parent, Experiment) or parent.problem != experiment.problem:
            return False
        parent_score = _ok_score(parent)
        return parent_score is not None and metric.better(score, parent_score)

    def findings(self, problem_id: str | None = None) -> list[Experiment]:
        if problem_id is None:
            candidates = self._of_kind(Experiment, self._records.values())
        else:
            candidates = self.experiments(problem_id)
        return [e for e in candidates if self.is_finding(e)]

    def findings_by_kind(self, problem_id: str | None = None) -> dict[str, list[Experiment]]:
        """Findings grouped by mutation kind; kinds in sorted order, findings in time order."""
        grouped: dict[str, list[Experiment]] = {}
        for finding in self.findings(problem_id):
            grouped.setdefault(finding.mutation_kind, []).append(finding)
        return {kind: grouped[kind] for kind in sorted(grouped)}

    def verifications_of(self, experiment_id: str) -> list[Verification]:
        return self._of_kind(Verification, self._linked(experiment_id, "verified_by"))

    def hypotheses_for(self, problem_id: str) -> list[Hypothesis]:
        return self._of_kind(Hypothesis, self._linked(problem_id, "targets", incoming=True))

    def tested_by(self, hypothesis_id: str) -> list[Experiment]:
        """Experiments that tested a hypothesis (their outcomes confirm or refute it)."""
        return self._of_kind(Experiment, self._linked(hypothesis_id, "tested_by"))

    def frontier(self, problem_id: str) -> list[Experiment]:
        """Ok, scored experiments that no ok child has beaten yet: where search can go on."""
        metric = self._metric(problem_id)
        if metric is None:
            return []
        frontier: list[Experiment] = []
        for experiment in self.experiments(problem_id):
            score = _ok_score(experiment)
            if score is None:
                continue
            children = self._of_kind(Experiment, self._linked(experiment.id, "has_child"))
            beaten = any(
                (child_score := _ok_score(child)) is not None and metric.better(child_score, score)
                for child in children
            )
            if not beaten:
                frontier.append(experiment)
        return frontier

    def patterns(self, include_retired: bool = False) -> list[Pattern]:
        return [
            p
            for p in self._of_kind(Pattern, self._records.values())
            if include_retired or not p.retired
        ]

    # ---- exports -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Nodes (id, kind, author, created_ms, summary) and edges (source, target, rel), sorted."""
        nodes = [self._node_fields(node) for node in self._sorted_nodes()]
        edges = [{"source": u, "target": v, "rel": rel} for u, v, rel in self._sorted_edges()]
        return {"nodes": nodes, "edges": edges}

    def to_dot(self) -> str:
        """Graphviz DOT text; labels carry kind, short id and summary."""
        lines = ["digraph research_dag {", "  node [shape=box, fontname=monospace];"]
        for node in self._sorted_nodes():
            fields = self._node_fields(node)
            label = f"{fields['kind']} {node[:10]}\n{fields['summary']}".rstrip()
            style = ", style=dashed" if fields["kind"] == "missing" else ""
            lines.append(f"  {_dot_quote(node)} [label={_dot_quote(label)}{style}];")
        for u, v, rel in self._sorted_edges():
            lines.append(f"  {_dot_quote(u)} -> {_dot_quote(v)} [label={_dot_quote(rel)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_graphml(self) -> str:
        """GraphML text (every attribute a string), for Gephi, yEd or networkx itself."""
        import networkx as nx

        export: Any = nx.MultiDiGraph()
        for node in self._sorted_nodes():
            fields = self._node_fields(node)
            export.add_node(node, **{k: "" if v is None else str(v) for k, v in fields.items()})
        for u, v, rel in self._sorted_edges():
            export.add_edge(u, v, key=rel, rel=rel)
        return "\n".join(str(line) for line in nx.generate_graphml(export)) + "\n"

    # ---- internals -----------------------------------------------------------------------

    def _linked(self, record_id: str, rel: str | None, incoming: bool = False) -> list[str]:
        if record_id not in self._graph:
            return []
        if incoming:
            edges = self._graph.in_edges(record_id, keys=True)
            return [str(u) for u, _, k in edges if rel is None or k == rel]
        edges = self._graph.out_edges(record_id, keys=True)
        return [str(v) for _, v, k in edges if rel is None or k == rel]

    def _of_kind(self, cls: type[_R], items: Iterable[str] | Iterable[Record]) -> list[_R]:
        found: list[_R] = []
        for item in items:
            record = self._records.get(item) if isinstance(item, str) else item
            if isinstance(record, cls):
                found.append(record)
        return sorted(found, key=_order)

    def _metric(self, problem_id: str) -> Metric | None:
        problem = self._records.get(problem_id)
        return problem.metric if isinstance(problem, Problem) else None

    def _sorted_nodes(self) -> list[str]:
        return sorted(str(node) for node in self._graph.nodes)

    def _sorted_edges(self) -> list[tuple[str, str, str]]:
        return sorted(self.snapshot()[1])

    def _node_fields(self, node: str) -> dict[str, Any]:
        record = self._records.get(node)
        if record is None:
            return {
                "id": node,
                "kind": "missing",
                "author": None,
                "created_ms": None,
                "summary": "",
            }
        return {
            "id": node,
            "kind": record.kind,
            "author": record.author,
            "created_ms": record.created_ms,
            "summary": _summary(record),
        }


def _edges_of(record: Record) -> list[tuple[str, str, Relation]]:
    me = record.id
    if isinstance(record, Experiment):
        edges: list[tuple[str, str, Relation]] = [(record.problem, me, "has_experiment")]
        if record.parent is not None:
            edges.append((record.parent, me, "has_child"))
        if record.hypothesis_id is not None:
            edges.append((record.hypothesis_id, me, "tested_by"))
        return edges
    if isinstance(record, Verification):
        return [(record.experiment, me, "verified_by")]
    if isinstance(record, Pattern):
        supports: list[tuple[str, str, Relation]] = [(s, me, "supports") for s in record.supporting]
        return supports + [(c, me, "contradicts") for c in record.contradicting]
    if isinstance(record, Hypothesis):
        return [(record.pattern, me, "suggests"), (me, record.problem, "targets")]
    return []


def _order(record: RecordBase) -> tuple[int, str]:
    return record.created_ms, record.id


def _ok_score(experiment: Experiment) -> float | None:
    return experiment.outcome.score if experiment.outcome.status == "ok" else None


def _score_of(experiment: Experiment | None) -> float | None:
    return None if experiment is None else experiment.outcome.score


def _summary(record: Record) -> str:
    if isinstance(record, Problem):
        text = f"{record.name} ({record.metric.direction} {record.metric.name})"
    elif isinstance(record, Experiment):
        score = record.outcome.score
        text = f"{record.mutation_kind}: {record.outcome.status}"
        text += f" {score:.6g}" if score is not None else ""
    elif isinstance(record, Verification):
        text = f"{'match' if record.match else 'mismatch'}: {record.outcome.status}"
    elif isinstance(record, Pattern):
        text = f"{record.mutation_kind}{' (retired)' if record.retired else ''}: {record.text}"
    else:
        text = f"{record.mutation_kind}: {record.text}"
    # Text comes from peers: control characters would make the XML and DOT exports unreadable.
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return printable if len(printable) <= SUMMARY_CHARS else printable[: SUMMARY_CHARS - 1] + "…"


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
