"""The node's durable record journal: an SQLite file that keeps every committed record, and
the index of them the node's Research DAG reads (docs/storage.md)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from node.store_ballast import Ballast
from node.store_blobs import MAX_DELTA_DEPTH
from node.store_bodies import Caches
from node.store_legacy import old_dropped, old_rows, remove_old, set_aside
from node.store_retention import StoreRetention
from node.store_rows import ReadRow, checked_values, pack_canonical, verified, whole_body
from node.store_schema import (
    NOT_HELD,
    RECOVERY,
    SCHEMA_VERSION,
    StoreCorrupt,
    StoreError,
    StoreFull,
    _is_id,
    create,
    prepare,
)
from node.store_table import READ_COLUMNS, read, write
from research_dag import DERIVED_AUTHOR, Problem, Record, ResearchDag, encode_record

__all__ = [
    "MAX_DELTA_DEPTH", "SCHEMA_VERSION", "RecordStore", "StoreCorrupt", "StoreError",
    "StoreFull",
]

PAGE_ROWS = 256  # rows read per lock hold while iterating, so writers never wait long
SERVE_PAGE_ROWS = 16  # rows per lock hold when serving a fetch, which stops at its size
MIGRATION_BATCH = 256  # old records written per statement group while upgrading a file
JUST_STORED = 4096  # ids of the latest batches remembered (`just_stored`)

# What SQLite answers when the file system will not take a write: ENOSPC is SQLITE_FULL; a
# quota's EDQUOT or a file size limit's EFBIG is an I/O error on write, and a full disk met
# while the WAL's index grows is SQLITE_IOERR_SHMSIZE (each rolls the transaction back).
REFUSED_WRITES = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR_WRITE,
                            sqlite3.SQLITE_IOERR_SHMSIZE, sqlite3.SQLITE_IOERR_TRUNCATE})

_log = logging.getLogger(__name__)
T = TypeVar("T")


class RecordStore(StoreRetention):
    """Records by id in insertion order, plus a small key/value table for the loop's state.

    Safe to share between threads (trio.to_thread workers): one connection, one lock. What
    `swarm gc` asks of it is node/store_retention.py's.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = connection
        self._lock = threading.Lock()
        # Intact records that today's schema refuses (written under older, looser rules, e.g.
        # before paths had a schema): kept, never handed to a loop, a replay or a peer.
        self.outdated: set[str] = set()
        self.caches = Caches()
        self.names = self.caches.names
        self._held = 0  # rows holding a record
        # Ids the last few batches stored: the DAG adds each record just stored, and asking
        # SQLite whether it holds each one cost ~40 us a record of a late joiner's intake.
        self._just_stored: OrderedDict[str, None] = OrderedDict()
        # Space held for the node's own records where a limit statfs does not show fills the
        # disk (node/store_ballast.py); None: no ballast (every command but `swarm join`).
        self.ballast: Ballast | None = None

    @classmethod
    def open(cls, path: Path, durable: bool = True, ballast_bytes: int = 0) -> RecordStore:
        """Open (creating if needed) the store at `path`, check its integrity and schema; a
        file an older version wrote is upgraded in place, in one transaction.

        `durable=False` (simulations only) skips fsync: much faster, not crash-safe.
        `ballast_bytes`: space to hold in the file `<name>.ballast` beside it and give to the
        node's own records when the disk fills (node/store_ballast.py; 0: none).
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # e.g. a --data-dir under a regular file
            raise StoreError(f"cannot create the directory of record store {path}: {error}"
                             ) from None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per call.
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open record store {path}: {error}") from None
        store = cls(path, db)
        try:
            with store.locked() as conn:
                version = prepare(conn, path, durable)
                if version < SCHEMA_VERSION:
                    store._transaction(conn, lambda: store._upgrade(conn, version))
                # Version 3 files written before dictionaries existed (the same day): no-op
                # when the table exists.
                conn.execute("CREATE TABLE IF NOT EXISTS dictionaries"
                             " (problem INTEGER PRIMARY KEY, data BLOB NOT NULL)")
                store.names.load(conn)
                store._held = int(conn.execute(
                    f"SELECT count(*) FROM records WHERE kind != {NOT_HELD}").fetchone()[0])
                store.outdated = {bytes(row[0]).hex() for row in conn.execute(
                    f"SELECT id FROM records WHERE kind = {NOT_HELD} AND body IS NOT NULL")}
        except BaseException:
            db.close()
            raise
        if ballast_bytes > 0:
            store.ballast = Ballast(path.with_name(path.name + ".ballast"), ballast_bytes)
            if not store.ballast.hold() and not store.ballast.disabled:
                _log.warning("the disk holding %s has no room for this node's ballast (%d MiB):"
                             " peers' records are not stored until it has", path,
                             ballast_bytes >> 20)
        return store

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- records -------------------------------------------------------------------------

    def add(self, record: Record) -> bool:
        """Store one record durably; True if it was new. Returns only after the commit."""
        return self.add_many([record]) == 1

    def add_many(self, records: Iterable[Record], keep_free: int | None = None) -> int:
        """Store records in one transaction; returns how many were new.

        `keep_free` (peers' records): bytes the file system must still have free once the
        records are written (checked before the commit, under the store's lock, so two batches
        cannot both pass one look; the batch counts twice its new pages, once in the WAL and
        once in the file); StoreFull, rolled back, if it would have fewer, and at once while
        the ballast is released. Without it (the node's own records), a disk found full
        releases the ballast and the batch is written again into the space it freed.

        Rows go in multi-row INSERTs: called from a worker thread, every statement releases and
        retakes the GIL, and retaking it waits for a busy trio thread's switch interval (5 ms),
        so one statement per row made a batch of hundreds take seconds. An experiment's files
        go into `blobs` in the same transaction, so a record is never stored without them.
        """
        batch = list(records)
        if not batch:
            return 0

        def work() -> int:
            before = _file_bytes(conn) if keep_free is not None else 0
            added = write(conn, self.caches, batch)
            if keep_free is not None:
                grown = _file_bytes(conn) - before
                if self.free_bytes() - 2 * grown < keep_free:
                    raise StoreFull(f"record store {self.path}: fewer than {keep_free} bytes"
                                    " would be left free")
            return added

        # The ballast is held, checked and released under the store's lock: a peers' batch
        # that passed a look at it before the lock was written into the space it had just
        # freed, and an own write failing while a peers' batch allocated it again found
        # nothing to release and stopped the node (a red team, 2026-12-08).
        with self.locked() as conn:
            ballast = self.ballast
            if keep_free is not None and ballast is not None and not ballast.hold():
                raise StoreFull(f"record store {self.path}: the ballast kept for this node's"
                                " own records is released (the disk was full)")
            try:
                added = self._transaction(conn, work)
            except sqlite3.OperationalError as error:
                if (keep_free is not None or ballast is None
                        or error.sqlite_errorcode not in REFUSED_WRITES or not ballast.release()):
                    raise
                _log.warning(
                    "the disk holding %s is full: this node's ballast (%d MiB) is released for"
                    " its own records, and peers' records are not stored until there is room"
                    " for it again (free space, or `swarm gc`)", self.path, ballast.size >> 20)
                added = self._transaction(conn, work)
            self._held += added
            for record in batch:
                self._just_stored[record.id] = None
            while len(self._just_stored) > JUST_STORED:
                self._just_stored.popitem(last=False)
        return added

    def free_bytes(self) -> int:
        """Bytes free on the file system holding the store (a statfs call, microseconds)."""
        try:
            return shutil.disk_usage(self.path.parent).free
        except OSError as error:
            raise StoreError(f"record store {self.path}: cannot read the free space ({error})"
                             ) from None

    def just_stored(self, record_id: str) -> bool:
        """Is it among the records the last few `add_many` calls stored (or held already)?"""
        return record_id in self._just_stored

    def get(self, record_id: str) -> Record | None:
        found = self.get_many([record_id])
        return found[0] if found else None

    def get_many(self, record_ids: Iterable[str]) -> list[Record]:
        """The records of `record_ids` that are held, in the order they were stored (files
        shared along a lineage are then inflated once, not once per record)."""
        found = sorted(self._read_many(record_ids))
        return [record for row in found if (record := self._verified(row)) is not None]

    def _read_many(self, record_ids: Iterable[str], page: int = PAGE_ROWS) -> Iterator[ReadRow]:
        """The held rows of `record_ids`, read `page` per lock hold, each page in stored order
        (files shared along a lineage are inflated once per page)."""
        wanted = [bytes.fromhex(i) for i in dict.fromkeys(record_ids) if _is_id(i)]
        for start in range(0, len(wanted), page):
            chunk = wanted[start : start + page]
            with self.locked() as conn:
                rows = conn.execute(
                    f"SELECT {READ_COLUMNS} WHERE r.kind != {NOT_HELD} AND r.id IN"
                    f" ({', '.join('?' * len(chunk))}) ORDER BY r.seq", chunk).fetchall()
                done = [read(conn, self.caches, row) for row in rows]
            yield from done

    def encoded_many(self, record_ids: Iterable[str], max_bytes: int | None = None
                     ) -> list[tuple[str, bytes]]:
        """The stored bytes of the records of `record_ids` that are held and signed, as
        (id, bytes) in the order they were stored: what a sync fetch sends.

        `max_bytes`: stop reading once this many bytes were read (what a response can hold),
        SERVE_PAGE_ROWS per lock hold: a fetch of 256 ids of 1 MB records read and inflated
        all of them, 1.6 s of the store's lock that an intake waited on, to send four.

        Each is re-assembled and its unsigned part re-hashed against its id (sha256 in C, a few
        microseconds), with every file's digest checked on the way, so a damaged row or file is
        never sent (a peer refuses a whole response for one bad record, and scores us down);
        damage raises StoreCorrupt as `get` does. Not decoded into a record, validated or
        signature-checked again: every row was when it was taken in, and the requester checks
        each record anyway.
        """
        found: list[tuple[int, str, bytes]] = []
        size = 0
        page = PAGE_ROWS if max_bytes is None else SERVE_PAGE_ROWS
        for row in self._read_many(record_ids, page):
            if max_bytes is not None and size > max_bytes:
                break
            seq, record_id = row[0], row[1]
            if record_id in self.outdated:
                continue
            checked = checked_values(row)
            if checked is None:
                # Damage raises StoreCorrupt here; an outdated record is None; an intact
                # one whose stored bytes are not canonical is sent re-encoded.
                record = self._verified(row)
                if record is not None and (record.signature or record.author == DERIVED_AUTHOR):
                    found.append((seq, record_id, encode_record(record)))
                    size += len(found[-1][2])
                continue
            values, encoded = checked
            # Derived records travel unsigned (docs/protocol.md, "Derived records"); intake
            # takes in no other kind with that author.
            if values.get("signature") or values.get("author") == DERIVED_AUTHOR:
                found.append((seq, record_id, encoded))
                size += len(encoded)
        found.sort()
        return [(record_id, encoded) for _, record_id, encoded in found]

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and bool(self.held([record_id]))

    def held(self, record_ids: Iterable[str]) -> set[str]:
        """Those of `record_ids` that are held."""
        wanted = [bytes.fromhex(i) for i in dict.fromkeys(record_ids) if _is_id(i)]
        found: set[str] = set()
        for start in range(0, len(wanted), PAGE_ROWS * 4):
            chunk = wanted[start : start + PAGE_ROWS * 4]
            with self.locked() as conn:
                found.update(bytes(row[0]).hex() for row in conn.execute(
                    f"SELECT id FROM records WHERE kind != {NOT_HELD} AND id IN"
                    f" ({', '.join('?' * len(chunk))})", chunk))
        return found

    def ids(self) -> set[str]:
        with self.locked() as conn:
            return {bytes(row[0]).hex() for row in conn.execute(
                f"SELECT id FROM records WHERE kind != {NOT_HELD}")}

    def count(self) -> int:
        """Records held (kept up to date in memory: no query, also once closed)."""
        return self._held

    def iter_records(self, kind: str | None = None, problem: str | None = None) -> Iterator[Record]:
        """Verified records in insertion order, filtered by kind and/or problem id; outdated
        ones (see `outdated`) are left out.

        `problem` matches experiments and hypotheses of that problem and the problem itself.
        Reads a page at a time, so other threads can write while a caller iterates.
        """
        where = f"r.seq > ? AND r.kind != {NOT_HELD}"
        filters: list[object] = []
        if kind is not None:
            code = self.names.known(f"k:{kind}")
            if code is None:
                return
            where += " AND r.kind = ?"
            filters.append(code)
        if problem is not None:
            if not _is_id(problem):
                return
            where += " AND r.problem = (SELECT seq FROM records WHERE id = ?)"
            filters.append(bytes.fromhex(problem))
        query = f"SELECT {READ_COLUMNS} WHERE {where} ORDER BY r.seq LIMIT ?"
        last_seq = 0
        while True:
            with self.locked() as conn:
                rows = conn.execute(query, (last_seq, *filters, PAGE_ROWS)).fetchall()
                done = [read(conn, self.caches, row) for row in rows]
            for row in done:
                record = self._verified(row)
                if record is not None:
                    yield record
            if len(rows) < PAGE_ROWS:
                return
            last_seq = int(rows[-1][0])

    def load_dag(self, cache: int | None = None) -> ResearchDag:
        """The Research DAG of every stored record. With `cache`, its index is this store's
        tables (node/store_index.py) and it keeps only `cache` whole records (and the problems)
        in memory, reading the rest back when asked: the store must then stay open as long as
        the DAG. Without, every record is read and kept in memory."""
        if cache is None:
            return ResearchDag(self.iter_records())
        from node.store_index import StoreIndex

        problems = [p for p in self.iter_records(kind="problem") if isinstance(p, Problem)]
        return ResearchDag(index=StoreIndex(self), load=self.get_many, cache=cache,
                           problems=problems)

    # ---- meta ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> bytes | None:
        with self.locked() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes) -> None:
        with self.locked() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ---- internals -----------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock; SQLite's errors leave as StoreError naming the file."""
        with self._lock:
            if self._db is None:
                raise StoreError(f"record store {self.path} is closed")
            try:
                yield self._db
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode in REFUSED_WRITES:
                    raise StoreFull(f"record store {self.path}: the disk is full or refuses"
                                    f" writes (a quota, a file size limit: {error})") from None
                if "locked" in str(error) or "busy" in str(error):
                    raise StoreError(
                        f"record store {self.path} is locked by another process ({error});"
                        " is another swarm node using the same data directory?"
                    ) from None
                raise StoreError(f"record store {self.path} failed: {error}") from None
            except sqlite3.DatabaseError as error:
                raise StoreError(
                    f"record store {self.path} is damaged ({error}); {RECOVERY}"
                ) from None

    def _transaction(self, conn: sqlite3.Connection, work: Callable[[], T]) -> T:
        """`work()` in one write transaction; on any failure nothing of it stays, in the file
        or in the caches of names and files."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already on some errors
                conn.execute("ROLLBACK")
            with contextlib.suppress(sqlite3.Error):  # no tables when an upgrade rolled back
                self.caches.clear(conn)
            raise
        return result

    def _upgrade(self, conn: sqlite3.Connection, version: int) -> None:
        """A new file gets the tables; a file version 1 or 2 wrote has every row copied into
        them (records keep their bytes, id and signature; intact rows today's rules refuse stay
        as outdated rows), and its old tables dropped."""
        if version == 0:
            create(conn)
            return
        _log.info("record store %s: upgrading schema version %d to %d (once)", self.path,
                  version, SCHEMA_VERSION)
        set_aside(conn, version)
        create(conn)
        self.names.load(conn)
        batch: list[Record] = []
        for row in old_rows(conn, version):
            result = self._verified(row)
            if result is not None:
                batch.append(result)
                if len(batch) >= MIGRATION_BATCH:
                    write(conn, self.caches, batch)
                    batch = []
                continue
            write(conn, self.caches, batch)  # stored order kept
            batch = []
            body = row[3]
            kept = body if isinstance(body, bytes) else pack_canonical(body)
            conn.execute(f"INSERT INTO records (id, kind, body) VALUES (?, {NOT_HELD}, ?)"
                         " ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                         (bytes.fromhex(row[1]), whole_body(kept)))
        write(conn, self.caches, batch)
        dropped = [bytes.fromhex(i) for i in old_dropped(conn) if _is_id(i)]
        conn.executemany("INSERT OR IGNORE INTO dropped (id) VALUES (?)", [(i,) for i in dropped])
        remove_old(conn)

    def _verified(self, row: ReadRow) -> Record | None:
        """The row's record; None if it is outdated; StoreCorrupt if it was altered."""
        result = verified(row, self.path)
        if not isinstance(result, str):
            return result
        record_id = row[1]
        if record_id not in self.outdated:
            self.outdated.add(record_id)
            _log.warning(
                "record store %s: skipping record %s (seq %d): it no longer passes the record"
                " schema (%s)", self.path, record_id, row[0], result
            )
        return None


def _file_bytes(conn: sqlite3.Connection) -> int:
    """The database's size in its pages (what it will take on disk once checkpointed)."""
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    return pages * int(conn.execute("PRAGMA page_size").fetchone()[0])
