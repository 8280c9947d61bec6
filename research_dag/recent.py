"""A bounded memory of headers in front of a store's index: what intake asks again and again
(whether a record is held, the headers of the records it names) answered without a query."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence

from research_dag.codec import Record
from research_dag.index import Edge, Header, HeaderIndex


class RecentHeaders:
    """A `HeaderIndex` that keeps the `size` headers most recently added or read, and as many
    ids `prefetch` found not held (until added), in front of `inner`. Records are never
    removed while a node runs (`swarm gc` needs it stopped), so a header kept stays true.

    Safe for the playbook curator reading the DAG in a worker thread while the event loop adds
    to it: each dict operation is atomic, and one evicted meanwhile is read again."""

    def __init__(self, inner: HeaderIndex, size: int) -> None:
        self._inner = inner
        self._size = max(1, size)
        self._recent: OrderedDict[str, Header] = OrderedDict()
        self._absent: OrderedDict[str, None] = OrderedDict()

    def add(self, record: Record, header: Header, edges: Sequence[Edge]) -> bool:
        self._absent.pop(header.id, None)
        new = False if header.id in self._recent else self._inner.add(record, header, edges)
        self._remember(header)
        return new

    def prefetch(self, record_ids: Iterable[str]) -> None:
        """Read in one pass whether these are held, and their headers."""
        wanted = set(record_ids).difference(self._recent)
        found = self._inner.headers(wanted)
        for header in found.values():
            self._remember(header)
        for record_id in wanted.difference(found):
            self._absent[record_id] = None
        while len(self._absent) > self._size:
            self._absent.popitem(last=False)

    def __contains__(self, record_id: object) -> bool:
        if record_id in self._recent:
            return True
        return record_id not in self._absent and record_id in self._inner

    def __len__(self) -> int:
        return len(self._inner)

    def held(self, record_ids: Iterable[str]) -> set[str]:
        return self._inner.held(record_ids)

    def headers(self, record_ids: Iterable[str]) -> dict[str, Header]:
        found: dict[str, Header] = {}
        asked: list[str] = []
        for record_id in record_ids:
            header = self._recent.get(record_id)
            if header is not None:
                found[record_id] = header
                with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
                    self._recent.move_to_end(record_id)
            elif record_id not in self._absent:
                asked.append(record_id)
        if asked:
            read = self._inner.headers(asked)
            for header in read.values():
                self._remember(header)
            found.update(read)
        return found

    def of_kind(self, kind: str | None) -> list[Header]:
        return self._inner.of_kind(kind)

    def experiments(self, problem_id: str, paths: frozenset[str] | None
                    ) -> list[tuple[Header, Header | None]]:
        return self._inner.experiments(problem_id, paths)

    def linked(self, sources: Iterable[str], rel: str | None) -> list[Edge]:
        return self._inner.linked(sources, rel)

    def linking(self, target: str, rel: str) -> list[str]:
        return self._inner.linking(target, rel)

    def edges(self) -> Iterator[Edge]:
        return self._inner.edges()

    def missing(self) -> set[str]:
        return self._inner.missing()

    def page(self, after: str | None, limit: int) -> list[str]:
        return self._inner.page(after, limit)

    def _remember(self, header: Header) -> None:
        recent = self._recent
        recent[header.id] = header
        with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
            recent.move_to_end(header.id)
        while len(recent) > self._size:
            with contextlib.suppress(KeyError):  # emptied by another thread meanwhile
                recent.popitem(last=False)
