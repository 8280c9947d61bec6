"""The Research DAG: a grow-only, order-free graph of records and the queries nodes ask of it."""

from __future__ import annotations

import contextlib
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeAlias, TypeVar

from research_dag.codec import Record
from research_dag.index import Header, HeaderIndex, MemoryIndex
from research_dag.recent import RecentHeaders
from research_dag.records import (
    Experiment,
    Hypothesis,
    Metric,
    Pattern,
    Problem,
    RecordBase,
    Verdict,
    Verification,
)
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
Snapshot: TypeAlias = tuple[frozenset[str], frozenset[tuple[str, str, str]]]

SUMMARY_CHARS = 80
HEADERS_PER_RECORD = 4  # headers kept per whole record of the cache (a header is ~0.3 KB)
_R = TypeVar("_R", bound=RecordBase)
# Whole records by id, those of the ids that exist (a store reads them in one pass).
Load: TypeAlias = Callable[[list[str]], "Iterable[Record]"]


class ResearchDag:
    """Records as nodes, references as edges; the state depends only on the set of records added.

    An edge may name an id not seen yet (a child arrived before its parent); the id stays a bare
    node until its record arrives, so any arrival order or duplication ends in the same graph.

    Memory: every record's header and edges live in `index`; whole records are kept only for
    problems and for the `cache` most recently used others, when a `load` function (the node's
    store) can bring any record back. Without `load`, every record is kept whole. Without an
    `index`, headers and edges are kept in memory (`MemoryIndex`); a node's store keeps them in
    SQLite (node/store_index.py), so its memory does not grow with history.
    """

    def __init__(
        self, records: Iterable[Record] = (), *, load: Load | None = None, cache: int = 2048,
        index: HeaderIndex | None = None, problems: Iterable[Problem] = (),
    ) -> None:
        self._load = load
        self._cache_size = max(1, cache)
        self._whole: OrderedDict[str, Record] = OrderedDict()  # most recently used last
        # With a store, the headers of records recently added or read are kept in front of its
        # index (intake asks for a new record's problem and parent, most often just added).
        self._recent: RecentHeaders | None = None
        if index is not None and load is not None:
            self._recent = RecentHeaders(index, HEADERS_PER_RECORD * self._cache_size)
            index = self._recent
        self._index: HeaderIndex = MemoryIndex() if index is None else index
        # Few, and asked for often (every summary): always in memory. `problems` are those the
        # index already holds.
        self._problems: dict[str, Problem] = {p.id: p for p in problems}
        for record in records:
            self.add(record)

    # ---- growing -------------------------------------------------------------------------

    def add(self, record: Record) -> bool:
        """Add one record and its edges; True if its id was new (adding again changes nothing).

        Ids leave out signatures, so a copy with another signature is the same record and the
        first copy stays: callers check signatures before adding. A store-backed DAG holds what
        its store holds, so a record stored first is not new here; it is kept as recently used.
        """
        record_id = sys.intern(record.id)
        new = self._index.add(record, header_of(record), edges_of(record))
        if new or (self._load is not None and record_id not in self._whole):
            self._keep(record_id, record)
        if isinstance(record, Problem):
            self._problems.setdefault(record_id, record)
        return new

    def _keep(self, record_id: str, record: Record) -> None:
        whole = self._whole
        whole[record_id] = record
        if self._load is not None:
            with contextlib.suppress(KeyError):  # the curator reads in a worker thread
                whole.move_to_end(record_id)
                while len(whole) > self._cache_size:
                    whole.popitem(last=False)

    def prefetch(self, records: Iterable[Record]) -> None:
        """Read in one pass what intake will ask of these records (whether each is held, the
        headers of those they name), so that its checks, one record at a time, read no more
        (a late joiner's response names ~2,000 ids; ~40 us a query each)."""
        records = list(records)
        if self._recent is not None:
            self._recent.prefetch({i for record in records
                                   for edge in edges_of(record) for i in edge[:2]}
                                  | {record.id for record in records})

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._index

    def __len__(self) -> int:
        return len(self._index)

    def get(self, record_id: str) -> Record | None:
        """The whole record: from memory, else from `load` (then kept as recently used)."""
        record = self._whole.get(record_id)
        if record is not None:
            if self._load is not None:
                with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
                    self._whole.move_to_end(record_id)
            return record
        problem = self._problems.get(record_id)
        if problem is not None or self._load is None:
            return problem
        for record in self._load([record_id]):  # only records the index holds
            if record.id == record_id:
                self._keep(sys.intern(record_id), record)
                return record
        return None

    def get_many(self, record_ids: Iterable[str]) -> list[Record]:
        """The held records of `record_ids`, in that order; those not in memory are read in one
        pass and not kept (a peer syncing all history must not flush the working set)."""
        wanted = list(record_ids)
        found = {i: record for i in wanted if (record := self._whole.get(i) or
                                                self._problems.get(i)) is not None}
        absent = [i for i in wanted if i not in found]
        if absent and self._load is not None:
            found.update((record.id, record) for record in self._load(absent))
        return [found[i] for i in wanted if i in found]

    def held(self, record_ids: Iterable[str]) -> set[str]:
        """Those of `record_ids` this DAG holds (one pass, not one look-up each)."""
        return self._index.held(record_ids)

    def edges_from(self, record_ids: Iterable[str], rel: Relation | None = None
                   ) -> list[tuple[str, str, str]]:
        """The edges leaving `record_ids` (of one relation, if given), in one pass."""
        return self._index.linked(record_ids, rel)

    def kept(self) -> int:
        """Whole records held in memory (problems aside): at most `cache` with a `load`."""
        return len(self._whole) if self._load is None else sum(
            1 for record_id in self._whole if record_id not in self._problems)

    def header(self, record_id: str) -> Header | None:
        return self._index.headers([record_id]).get(record_id)

    def ids(self) -> set[str]:
        """The ids of every record held (unsorted: `records` sorts, which costs O(n log n))."""
        return {h.id for h in self._index.of_kind(None)}

    def page(self, after: str | None, limit: int) -> list[str]:
        """Held ids above `after` (all if None), ascending, at most `limit` (a sync summary)."""
        return self._index.page(after, limit)

    def records(self, kind: str | None = None) -> list[Record]:
        """Records (of one kind, if given) ordered by created_ms, then id."""
        return self.get_many(h.id for h in self._index.of_kind(kind))

    def missing(self) -> set[str]:
        """Ids that present records refer to but whose records have not arrived (sync asks)."""
        return self._index.missing()

    def snapshot(self) -> Snapshot:
        """Order-free state for equality: (ids with records, (source, target, rel) edges)."""
        return frozenset(self.ids()), frozenset(self._index.edges())

    # ---- queries -------------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        return sorted(self._problems.values(), key=_order)

    def experiment_headers(self, problem_id: str) -> list[Header]:
        """The headers of `experiments(problem_id)`, in the same order, without loading any."""
        return [h for h, _ in self._experiment_pairs(problem_id)]

    def _experiment_pairs(self, problem_id: str) -> list[tuple[Header, Header | None]]:
        problem = self._problems.get(problem_id)
        return self._index.experiments(
            problem_id, None if problem is None else frozenset(problem.mutable))

    def experiments(self, problem_id: str) -> list[Experiment]:
        """The problem's experiments; once the problem is held, only those consistent with it.

        A record that names one not held yet is taken in unchecked (the DAG is order-free), so
        a claim naming files the problem does not declare, or a parent of another problem, can
        precede its problem: it stays stored but is never counted, ranked or shown as a best.
        """
        return self._whole_of(Experiment, self.experiment_headers(problem_id))

    def authors(self, problem_id: str) -> set[str]:
        """Who has experiments on a problem (without loading them)."""
        return {h.author for h in self.experiment_headers(problem_id)}

    def best(
        self, problem_id: str, verified: Callable[[Experiment], bool] | None = None
    ) -> Experiment | None:
        """The ok, scored experiment with the best score among those `verified` accepts; ties go
        to the earliest, then least id.

        A DAG holds peers' claims as they made them, forged ones included: anything that shows
        a best to a person passes the trust ledger's `verified` (node/trust.py). Only a solo
        store, where every record is the node's own, may leave it out.
        """
        problem = self._problems.get(problem_id)
        if problem is None:
            return None
        best: Experiment | None = None
        for header in self.experiment_headers(problem_id):
            score = header.score
            if score is None or not problem.metric.better(score, _score_of(best)):
                continue
            experiment = self.get(header.id)
            if isinstance(experiment, Experiment) and (verified is None or verified(experiment)):
                best = experiment
        return best

    def lineage(self, experiment_id: str) -> list[Experiment]:
        """The chain of experiments from the oldest known ancestor (first) to this one (last)."""
        chain: list[Experiment] = []
        current = self.get(experiment_id)
        seen: set[str] = set()
        while isinstance(current, Experiment) and current.id not in seen:
            seen.add(current.id)
            chain.append(current)
            current = self.get(current.parent) if current.parent else None
        chain.reverse()
        return chain

    def linked_ids(self, record_id: str, rel: Relation | None = None) -> list[str]:
        """The ids this record's outgoing edges lead to (of one relation, if given), whether or
        not their records are held."""
        return [target for _, target, _ in self._index.linked([record_id], rel)]

    def children(self, record_id: str, rel: Relation | None = None) -> list[Record]:
        """Present records this record's outgoing edges lead to (of one relation, if given)."""
        held = self._index.headers(self.linked_ids(record_id, rel))
        return self.get_many(h.id for h in sorted(held.values(), key=_order))

    def is_finding(self, experiment: Experiment) -> bool:
        """Ok and strictly better than its known, ok, scored parent, in the problem's direction."""
        header = self.header(experiment.id) or header_of(experiment)
        parent = None if header.parent is None else self.header(header.parent)
        return self._is_finding(header, parent)

    def _is_finding(self, header: Header, parent: Header | None) -> bool:
        metric = self._metric(header.problem)
        if metric is None or header.score is None or parent is None:
            return False
        if parent.kind != "experiment" or parent.problem != header.problem:
            return False
        return parent.score is not None and metric.better(header.score, parent.score)

    def findings(self, problem_id: str | None = None) -> list[Experiment]:
        if problem_id is None:
            pairs = [pair for p in self._problems for pair in self._index.experiments(p, None)]
            pairs.sort(key=lambda pair: _order(pair[0]))
        else:
            pairs = self._experiment_pairs(problem_id)
        return self._whole_of(Experiment, [h for h, parent in pairs
                                           if self._is_finding(h, parent)])

    def findings_by_kind(self, problem_id: str | None = None) -> dict[str, list[Experiment]]:
        """Findings grouped by mutation kind; kinds in sorted order, findings in time order."""
        grouped: dict[str, list[Experiment]] = {}
        for finding in self.findings(problem_id):
            grouped.setdefault(finding.mutation_kind, []).append(finding)
        return {kind: grouped[kind] for kind in sorted(grouped)}

    def verifications_of(self, experiment_id: str) -> list[Verification]:
        return self._linked_of(Verification, self.linked_ids(experiment_id, "verified_by"))

    def hypotheses_for(self, problem_id: str) -> list[Hypothesis]:
        return self._linked_of(Hypothesis, self._index.linking(problem_id, "targets"))

    def hypothesis_ids_for(self, problem_id: str) -> list[str]:
        """The ids of `hypotheses_for(problem_id)`, without loading them."""
        return list(self._index.headers(self._index.linking(problem_id, "targets")))

    def tested_by(self, hypothesis_id: str) -> list[Experiment]:
        """Experiments that tested a hypothesis (their outcomes confirm or refute it)."""
        return self._linked_of(Experiment, self.linked_ids(hypothesis_id, "tested_by"))

    def frontier(self, problem_id: str) -> list[Experiment]:
        """Ok, scored experiments that no ok child has beaten yet: where search can go on."""
        metric = self._metric(problem_id)
        if metric is None:
            return []
        scored = [h for h in self.experiment_headers(problem_id) if h.score is not None]
        edges = self._index.linked((h.id for h in scored), "has_child")
        children = self._index.headers(target for _, target, _ in edges)
        beaten: set[str] = set()
        by_id = {h.id: h for h in scored}
        for source, target, _ in edges:
            child, parent = children.get(target), by_id[source]
            if (child is not None and child.kind == "experiment" and child.score is not None
                    and parent.score is not None and metric.better(child.score, parent.score)):
                beaten.add(source)
        return self._whole_of(Experiment, [h for h in scored if h.id not in beaten])

    def patterns(self, include_retired: bool = False) -> list[Pattern]:
        return [
            p for p in self._whole_of(Pattern, self._index.of_kind("pattern"))
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

    def _whole_of(self, cls: type[_R], headers: Iterable[Header]) -> list[_R]:
        """The records of `headers` (in that order) that are `cls`; those not in memory are
        read in one pass (a startup reading every verification made one query each)."""
        return [r for r in self.get_many(h.id for h in headers) if isinstance(r, cls)]

    def _linked_of(self, cls: type[_R], ids: Iterable[str]) -> list[_R]:
        held = self._index.headers(ids)
        return self._whole_of(cls, sorted(held.values(), key=_order))

    def _metric(self, problem_id: str | None) -> Metric | None:
        problem = None if problem_id is None else self._problems.get(problem_id)
        return None if problem is None else problem.metric

    def _sorted_nodes(self) -> list[str]:
        nodes = self.ids()
        for source, target, _ in self._index.edges():
            nodes.add(source)
            nodes.add(target)
        return sorted(nodes)

    def _sorted_edges(self) -> list[tuple[str, str, str]]:
        return sorted(set(self._index.edges()))

    def _node_fields(self, node: str) -> dict[str, Any]:
        record = self.get(node)
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


def _order(record: RecordBase | Header) -> tuple[int, str]:
    return record.created_ms, record.id


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
    elif isinstance(record, Verdict):
        text = f"{record.result} by {len(record.tests)} tests: {record.text}"
    elif isinstance(record, Transcript):
        text = f"{len(record.calls)} model calls"
    else:
        text = f"{record.mutation_kind}: {record.text}"
    # Text comes from peers: control characters would make the XML and DOT exports unreadable.
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return printable if len(printable) <= SUMMARY_CHARS else printable[: SUMMARY_CHARS - 1] + "…"


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


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
