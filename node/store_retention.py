"""What `swarm gc` asks of the record store: deleting records for good (with the files only they
used) while remembering their ids, those ids, compaction, and the store's size on disk."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import msgpack

from node.store_bodies import Caches, keep_diffs
from node.store_schema import NOT_HELD, _is_id
from node.store_table import PAGE

T = TypeVar("T")


class StoreRetention:
    """The retention half of `RecordStore` (node/store.py), which sets the attributes below."""

    path: Path
    caches: Caches
    _held: int

    if TYPE_CHECKING:  # node/store.py

        def locked(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _transaction(self, conn: sqlite3.Connection, work: Callable[[], T]) -> T: ...

    def drop(self, record_ids: Iterable[str]) -> int:
        """Delete records for good, in one transaction, with the files only they used; their
        ids are remembered (`dropped_ids`) so a sync does not fetch them again. A dropped
        record's row stays as an id other records may name. Returns how many records were
        deleted. Which records may go is the caller's policy (node/retention.py)."""
        ids = [bytes.fromhex(i) for i in dict.fromkeys(record_ids) if _is_id(i)]

        def drop_rows(conn: sqlite3.Connection) -> int:
            seqs: list[int] = []
            for start in range(0, len(ids), PAGE):
                chunk = ids[start : start + PAGE]
                conn.execute("INSERT OR IGNORE INTO dropped (id) VALUES "
                             + ", ".join(["(?)"] * len(chunk)), chunk)
                seqs += [int(row[0]) for row in conn.execute(
                    f"SELECT seq FROM records WHERE kind != {NOT_HELD} AND id IN"
                    f" ({', '.join('?' * len(chunk))})", chunk)]
            keep_diffs(conn, self.caches, seqs)
            deleted = 0
            for start in range(0, len(seqs), PAGE):
                chunk_seqs = seqs[start : start + PAGE]
                held = ", ".join("?" * len(chunk_seqs))
                conn.execute(f"DELETE FROM edges WHERE owner IN ({held})", chunk_seqs)
                deleted += conn.execute(
                    f"UPDATE records SET kind = {NOT_HELD}, problem = NULL, parent = NULL,"
                    " created_ms = NULL, author = NULL, score = NULL, paths = NULL, body = NULL,"
                    f" refs = NULL WHERE seq IN ({held})", chunk_seqs).rowcount
            used: set[int] = set()
            for (refs,) in conn.execute("SELECT refs FROM records WHERE refs IS NOT NULL"):
                used.update(_numbers(bytes(refs)))
            self.caches.blobs.drop_unused(conn, used)
            return deleted

        with self.locked() as conn:
            deleted = self._transaction(conn, lambda: drop_rows(conn))
            self._held -= deleted
        return deleted

    def dropped_ids(self) -> set[str]:
        """Ids `drop` deleted: not to be taken in again."""
        with self.locked() as conn:
            return {bytes(row[0]).hex() for row in conn.execute("SELECT id FROM dropped")}

    def compact(self) -> None:
        """Give the space of deleted rows back to the file system (VACUUM: rewrites the file)."""
        with self.locked() as conn:
            conn.execute("VACUUM")

    def size(self) -> int:
        """Bytes the store takes on disk (database and write-ahead log)."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())


def _numbers(refs: bytes) -> list[int]:
    try:
        numbers = msgpack.unpackb(refs, raw=False)
    except (ValueError, msgpack.UnpackException):
        return []  # a damaged row keeps nothing alive
    return [n for n in numbers if isinstance(n, int)] if isinstance(numbers, list) else []
