"""The Research DAG: a grow-only, order-free graph of records, and its exports (JSON, DOT,
GraphML)."""

from __future__ import annotations

import contextlib
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from research_dag.codec import Record
from research_dag.dag_queries import DagQueries
from research_dag.derived import Pattern, Verdict
from research_dag.edges import Relation, edges_of, header_of
from research_dag.index import Header, HeaderIndex, MemoryIndex
from research_dag.recent import RecentHeaders
from research_dag.records import Experiment, Problem, Verification
from research_dag.transcripts import Transcript

Snapshot: TypeAlias = tuple[frozenset[str], frozenset[tuple[str, str, str]]]

SUMMARY_CHARS = 80
HEADERS_PER_RECORD = 4  # headers kept per whole record of the cache (a header is ~0.3 KB)
# Whole records by id, those of the ids that exist (a store reads them in one pass).
Load: TypeAlias = Callable[[list[str]], "Iterable[Record]"]


class ResearchDag(DagQueries):
    """Records as nodes, references as edges; the state depends only on the set of records added.

    An edge may name an id not seen yet (a child arrived before its parent); the id stays a bare
    node until its record arrives, so any arrival order or duplication ends in the same graph.

    Memory: every record's header and edges live in `index`; whole records are kept only for
    problems and for the `cache` most recently used others, when a `load` function (the node's
    store) can bring any record back. Without `load`, every record is kept whole. Without an
    `index`, headers and edges are kept in memory (`MemoryIndex`); a node's store keeps them in
    SQLite (node/store_index.py), so its memory does not grow with history. The queries are
    research_dag/dag_queries.py's.
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
        self._problems: dict[str, Problem] = {}
        for problem in problems:
            self._hold_problem(problem.id, problem)
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
        if isinstance(record, Problem) and record_id not in self._problems:
            self._hold_problem(record_id, record)
        return new

    def _hold_problem(self, record_id: str, problem: Problem) -> None:
        """Held for good, without its cached encoding: a package of up to 3 MiB was kept
        twice, as files and as bytes (the store and sync read the bytes from the file)."""
        problem.__dict__.pop("_encoded_cache", None)
        self._problems[record_id] = problem

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

    def headers_of(self, kind: str | None = None) -> list[Header]:
        """Headers of the records (of one kind, if given) ordered as `records` orders them."""
        return self._index.of_kind(kind)

    def records(self, kind: str | None = None) -> list[Record]:
        """Records (of one kind, if given) ordered by created_ms, then id."""
        return self.get_many(h.id for h in self._index.of_kind(kind))

    def missing(self) -> set[str]:
        """Ids that present records refer to but whose records have not arrived (sync asks)."""
        return self._index.missing()

    def snapshot(self) -> Snapshot:
        """Order-free state for equality: (ids with records, (source, target, rel) edges)."""
        return frozenset(self.ids()), frozenset(self._index.edges())

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
