"""The Research DAG's index of a node's records, in the store's tables: headers are row columns
and edges are columns or `edges` rows, so a node's memory does not grow with its history
(research_dag.HeaderIndex; docs/storage.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from node.store_schema import EXPERIMENT, NOT_HELD, Names
from node.store_table import PAGE
from research_dag import Edge, Header, Record, order


class IndexedStore(Protocol):
    """What the index asks of the store (node.store.RecordStore), named here so the store can
    build its index without the two modules importing each other."""

    names: Names

    def add(self, record: Record) -> bool: ...

    def just_stored(self, record_id: str) -> bool: ...

    def __contains__(self, record_id: object) -> bool: ...

    def held(self, record_ids: Iterable[str]) -> set[str]: ...

    def count(self) -> int: ...

    def locked(self) -> AbstractContextManager[sqlite3.Connection]: ...

# A header's columns, of a row `r` joined with its problem `p` and parent `q`.
HEADER = ("r.id, r.kind, r.created_ms, r.author, p.id, q.id, r.score, r.paths")
JOINED = ("FROM records r LEFT JOIN records p ON p.seq = r.problem"
          " LEFT JOIN records q ON q.seq = r.parent")
# The edges an experiment's row holds as columns: relation -> column.
COLUMNS = {"has_experiment": "problem", "has_child": "parent"}


class StoreIndex:
    """A `HeaderIndex` over a RecordStore: every query is SQL on indexed columns; what stays
    in memory is the names table (kinds, authors, file sets, relations)."""

    def __init__(self, store: IndexedStore) -> None:
        self._store = store
        self._names = store.names

    def add(self, record: Record, header: Header, edges: Sequence[Edge]) -> bool:
        """Stores `record` unless the store holds it (a node stores every record first)."""
        if self._store.just_stored(record.id) or record.id in self._store:
            return False
        return self._store.add(record)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._store

    def __len__(self) -> int:
        return self._store.count()

    def held(self, record_ids: Iterable[str]) -> set[str]:
        return self._store.held(record_ids)

    def headers(self, record_ids: Iterable[str]) -> dict[str, Header]:
        wanted = [bytes.fromhex(i) for i in dict.fromkeys(record_ids) if _is_id(i)]
        found: dict[str, Header] = {}
        for start in range(0, len(wanted), PAGE):
            chunk = wanted[start : start + PAGE]
            for row in self._query(
                    f"SELECT {HEADER} {JOINED} WHERE r.kind != {NOT_HELD} AND r.id IN"
                    f" ({', '.join('?' * len(chunk))})", chunk):
                header = self._header(row)
                found[header.id] = header
        return found

    def of_kind(self, kind: str | None) -> list[Header]:
        if kind is None:
            where, args = f"r.kind != {NOT_HELD}", []
        else:
            code = self._names.known(f"k:{kind}")
            if code is None:
                return []
            # The partial index on kind leaves experiments out: say so, or it is not used.
            where = "r.kind = ?" if code == EXPERIMENT else f"r.kind = ? AND r.kind != {EXPERIMENT}"
            args = [code]
        return sorted((self._header(row) for row in self._query(
            f"SELECT {HEADER} {JOINED} WHERE {where}", args)), key=order)

    def experiments(self, problem_id: str, paths: frozenset[str] | None
                    ) -> list[tuple[Header, Header | None]]:
        """As research_dag.index.fits has it: with `paths`, the experiment's file set is the
        problem's, and its parent is not held or is an experiment of the same problem."""
        if not _is_id(problem_id):
            return []
        where = ""
        args: list[Any] = [bytes.fromhex(problem_id)]
        if paths is not None:
            code = self._names.known("p:" + "\n".join(sorted(paths)))
            if code is None:
                return []
            where = (f" AND r.paths = ? AND (q.seq IS NULL OR q.kind = {NOT_HELD}"
                     f" OR (q.kind = {EXPERIMENT} AND q.problem = r.problem))")
            args.append(code)
        rows = self._query(
            f"SELECT {HEADER}, q.kind, q.created_ms, q.author, qp.id, qq.id, q.score, q.paths"
            " FROM records x JOIN records r ON r.problem = x.seq"
            " LEFT JOIN records q ON q.seq = r.parent"
            " LEFT JOIN records p ON p.seq = r.problem"
            " LEFT JOIN records qp ON qp.seq = q.problem LEFT JOIN records qq ON qq.seq = q.parent"
            f" WHERE x.id = ? AND r.kind = {EXPERIMENT}{where}", args)
        pairs = []
        for row in rows:
            header = self._header(row[:8])
            held = row[8] is not None and row[8] != NOT_HELD
            parent = self._header((row[5], *row[8:])) if held else None
            pairs.append((header, parent))
        pairs.sort(key=lambda pair: order(pair[0]))
        return pairs

    def linked(self, sources: Iterable[str], rel: str | None) -> list[Edge]:
        wanted = [bytes.fromhex(i) for i in dict.fromkeys(sources) if _is_id(i)]
        found: list[tuple[int, Edge]] = []
        if rel is None or rel == "has_child":
            found += self._children(wanted)
        for start in range(0, len(wanted), PAGE):
            chunk = wanted[start : start + PAGE]
            marks = ", ".join("?" * len(chunk))
            if rel is None or rel == "has_experiment":
                found += [(int(seq), (bytes(s).hex(), bytes(t).hex(), "has_experiment"))
                          for seq, s, t in self._query(
                    "SELECT r.seq, s.id, r.id FROM records s JOIN records r"
                    f" ON r.problem = s.seq WHERE s.id IN ({marks}) AND r.kind = {EXPERIMENT}",
                    chunk)]
            code = None if rel is None else self._names.known(f"r:{rel}")
            if rel is not None and code is None:
                continue
            found += [(int(seq), (bytes(s).hex(), bytes(t).hex(), self._names.name(int(r))))
                      for seq, s, t, r in self._query(
                f"SELECT e.rowid, s.id, t.id, e.rel FROM records s JOIN edges e ON e.source = s.seq"
                f" JOIN records t ON t.seq = e.target WHERE s.id IN ({marks})"
                + ("" if code is None else f" AND e.rel = {code}"), chunk)]
        found.sort(key=lambda pair: pair[0])
        return [edge for _, edge in found]

    def _children(self, sources: list[bytes]) -> list[tuple[int, Edge]]:
        """The experiments whose parents are `sources`: one pass over the experiments, as the
        parent column has no index (it would cost ~12 bytes an attempt, and only views and
        `frontier` ask, never a round of the loop)."""
        if not sources:
            return []
        seqs: dict[int, str] = {}
        for start in range(0, len(sources), PAGE):
            chunk = sources[start : start + PAGE]
            seqs.update((int(seq), bytes(i).hex()) for seq, i in self._query(
                f"SELECT seq, id FROM records WHERE id IN ({', '.join('?' * len(chunk))})",
                chunk))
        if not seqs:
            return []
        return [(int(seq), (seqs[int(parent)], bytes(i).hex(), "has_child"))
                for parent, seq, i in self._query(
                    f"SELECT parent, seq, id FROM records WHERE kind = {EXPERIMENT}"
                    " AND parent IS NOT NULL", []) if int(parent) in seqs]

    def linking(self, target: str, rel: str) -> list[str]:
        if not _is_id(target):
            return []
        key = bytes.fromhex(target)
        column = COLUMNS.get(rel)
        if column is not None:
            return [bytes(row[0]).hex() for row in self._query(
                f"SELECT s.id FROM records r JOIN records s ON s.seq = r.{column}"
                f" WHERE r.id = ? AND r.kind = {EXPERIMENT}", [key])]
        code = self._names.known(f"r:{rel}")
        if code is None:
            return []
        return [bytes(row[0]).hex() for row in self._query(
            "SELECT s.id FROM records t JOIN edges e ON e.target = t.seq AND e.rel = ?"
            " JOIN records s ON s.seq = e.source WHERE t.id = ? ORDER BY e.rowid", [code, key])]

    def edges(self) -> Iterator[Edge]:
        for relation, column in COLUMNS.items():
            for s, t in self._query(
                    f"SELECT s.id, r.id FROM records r JOIN records s ON s.seq = r.{column}"
                    f" WHERE r.kind = {EXPERIMENT}", []):
                yield bytes(s).hex(), bytes(t).hex(), relation
        for s, t, r in self._query(
                "SELECT s.id, t.id, e.rel FROM edges e JOIN records s ON s.seq = e.source"
                " JOIN records t ON t.seq = e.target", []):
            yield bytes(s).hex(), bytes(t).hex(), self._names.name(int(r))

    def missing(self) -> set[str]:
        return {bytes(row[0]).hex() for row in self._query(
            f"SELECT m.id FROM records m WHERE m.kind = {NOT_HELD} AND m.kind != {EXPERIMENT}"
            f" AND (m.seq IN (SELECT problem FROM records WHERE kind = {EXPERIMENT})"
            " OR m.seq IN (SELECT parent FROM records WHERE parent IS NOT NULL)"
            " OR m.seq IN (SELECT source FROM edges) OR m.seq IN (SELECT target FROM edges))",
            [])}

    def page(self, after: str | None, limit: int) -> list[str]:
        """Ids in the order of the index on them; rows of ids not held are skipped."""
        start = b"" if after is None else bytes.fromhex(after)
        found: list[str] = []
        while len(found) < limit:
            wanted = limit - len(found)
            rows = self._query("SELECT id, kind FROM records WHERE id > ? ORDER BY id LIMIT ?",
                               [start, wanted])
            found += [bytes(i).hex() for i, kind in rows if kind != NOT_HELD]
            if len(rows) < wanted:
                break
            start = bytes(rows[-1][0])
        return found

    def _query(self, sql: str, args: list[Any]) -> list[tuple[Any, ...]]:
        with self._store.locked() as conn:
            return conn.execute(sql, args).fetchall()

    def _header(self, row: tuple[Any, ...]) -> Header:
        record_id, kind, created_ms, author, problem, parent, score, paths = row
        name = self._names.name
        return Header(
            bytes(record_id).hex(), name(int(kind)), int(created_ms), name(int(author)),
            None if problem is None else bytes(problem).hex(),
            None if parent is None else bytes(parent).hex(),
            None if score is None else float(score),
            frozenset() if paths is None else frozenset(name(int(paths)).split("\n")),
        )


def _is_id(record_id: object) -> bool:
    return isinstance(record_id, str) and len(record_id) == 64
