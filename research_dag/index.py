"""The Research DAG's index of every record it holds: headers and edges, the role a store plays
for a node (in SQLite: node/store_index.py) and an in-memory one for everything else."""

from __future__ import annotations

import bisect
import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from research_dag.codec import Record

# (source, target, relation): an edge reads "source <relation> target" (research_dag.dag).
Edge: TypeAlias = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Header:
    """What the DAG knows of every record it holds without loading it: enough to order, filter
    and rank (an experiment's files are most of its bytes)."""

    id: str
    kind: str
    created_ms: int
    author: str
    problem: str | None = None  # an experiment's or hypothesis's problem; a problem's own id
    parent: str | None = None
    score: float | None = None  # an experiment's score when its status is ok
    files: frozenset[str] = frozenset()  # an experiment's strategy paths


def order(header: Header) -> tuple[int, str]:
    """The DAG's order of records: by the time their author gave them, then by id."""
    return header.created_ms, header.id


def fits(experiment: Header, parent: Header | None, paths: frozenset[str]) -> bool:
    """Is a held experiment consistent with its held problem, whose mutable files are `paths`:
    exactly those files, and a parent that is not held yet or is an experiment of the same
    problem? (node/store_index.py says the same in SQL.)"""
    if experiment.files != paths:
        return False
    return parent is None or (parent.kind == "experiment" and parent.problem == experiment.problem)


class HeaderIndex(Protocol):
    """Every record a DAG holds, as its header and edges; the DAG keeps only a bounded working
    set of whole records besides. The state depends only on the set of records added."""

    def add(self, record: Record, header: Header, edges: Sequence[Edge]) -> bool:
        """Hold `record` (True if it was not held). A store-backed index holds what its store
        holds: a record the store took first is already held (False)."""
        ...

    def __contains__(self, record_id: object) -> bool: ...

    def __len__(self) -> int: ...

    def held(self, record_ids: Iterable[str]) -> set[str]:
        """Those of `record_ids` that are held."""
        ...

    def headers(self, record_ids: Iterable[str]) -> dict[str, Header]:
        """The headers of those of `record_ids` that are held."""
        ...

    def of_kind(self, kind: str | None) -> list[Header]:
        """Held records (of one kind, if given) in `order`."""
        ...

    def experiments(self, problem_id: str, paths: frozenset[str] | None
                    ) -> list[tuple[Header, Header | None]]:
        """The held experiments naming `problem_id`, in `order`, each with its parent's header
        (None: no parent, or not held); with `paths`, only those that `fits` them."""
        ...

    def linked(self, sources: Iterable[str], rel: str | None) -> list[Edge]:
        """The edges leaving `sources` (of one relation, if given), whatever their targets."""
        ...

    def linking(self, target: str, rel: str) -> list[str]:
        """The sources of the `rel` edges that enter `target`."""
        ...

    def edges(self) -> Iterator[Edge]:
        """Every edge of every held record."""
        ...

    def missing(self) -> set[str]:
        """Ids that held records refer to but that are not held."""
        ...

    def page(self, after: str | None, limit: int) -> list[str]:
        """Held ids above `after` (all if None), ascending, at most `limit`."""
        ...


class MemoryIndex:
    """A `HeaderIndex` in dicts: for a DAG without a store (tests, simulations, one-shot views).
    ~0.6 KB a record."""

    def __init__(self) -> None:
        self._headers: dict[str, Header] = {}
        self._out: dict[str, list[tuple[str, str]]] = {}  # source -> (target, rel)
        self._in: dict[tuple[str, str], list[str]] = {}  # (target, rel) -> sources
        self._files: dict[frozenset[str], frozenset[str]] = {}  # one copy of each path set
        self._sorted: list[str] = []  # held ids, ascending, as of `_sorted_at` records
        self._sorted_at = 0

    def add(self, record: Record, header: Header, edges: Sequence[Edge]) -> bool:
        record_id = sys.intern(header.id)
        if record_id in self._headers:
            return False
        files = self._files.setdefault(header.files, header.files)
        self._headers[record_id] = Header(
            record_id, header.kind, header.created_ms, sys.intern(header.author),
            None if header.problem is None else sys.intern(header.problem),
            None if header.parent is None else sys.intern(header.parent), header.score, files)
        for source, target, rel in dict.fromkeys(edges):
            source, target = sys.intern(source), sys.intern(target)
            self._out.setdefault(source, []).append((target, rel))
            self._in.setdefault((target, rel), []).append(source)
        return True

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._headers

    def __len__(self) -> int:
        return len(self._headers)

    def held(self, record_ids: Iterable[str]) -> set[str]:
        return {i for i in record_ids if i in self._headers}

    def headers(self, record_ids: Iterable[str]) -> dict[str, Header]:
        return {i: h for i in record_ids if (h := self._headers.get(i)) is not None}

    def of_kind(self, kind: str | None) -> list[Header]:
        return sorted((h for h in self._headers.values() if kind is None or h.kind == kind),
                      key=order)

    def experiments(self, problem_id: str, paths: frozenset[str] | None
                    ) -> list[tuple[Header, Header | None]]:
        found: list[tuple[Header, Header | None]] = []
        for target, rel in self._out.get(problem_id, ()):
            header = self._headers.get(target)
            if rel != "has_experiment" or header is None or header.kind != "experiment":
                continue
            parent = None if header.parent is None else self._headers.get(header.parent)
            if paths is None or fits(header, parent, paths):
                found.append((header, parent))
        return sorted(dict.fromkeys(found), key=lambda pair: order(pair[0]))

    def linked(self, sources: Iterable[str], rel: str | None) -> list[Edge]:
        return [(source, target, r) for source in dict.fromkeys(sources)
                for target, r in self._out.get(source, ()) if rel is None or r == rel]

    def linking(self, target: str, rel: str) -> list[str]:
        return list(self._in.get((target, rel), ()))

    def edges(self) -> Iterator[Edge]:
        for source, out in self._out.items():
            for target, rel in out:
                yield source, target, rel

    def missing(self) -> set[str]:
        nodes = set(itertools.chain.from_iterable((s, t) for s, t, _ in self.edges()))
        return {node for node in nodes if node not in self._headers}

    def page(self, after: str | None, limit: int) -> list[str]:
        if self._sorted_at != len(self._headers):
            self._sorted = sorted(self._headers)
            self._sorted_at = len(self._headers)
        start = 0 if after is None else bisect.bisect_right(self._sorted, after)
        return self._sorted[start : start + limit]
