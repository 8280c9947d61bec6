"""The node's durable record journal: an SQLite file that keeps every committed record."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from research_dag import (
    Experiment,
    Hypothesis,
    Problem,
    Record,
    RecordError,
    ResearchDag,
    decode_record,
    encode_record,
    encoded_record_id,
)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
PAGE_ROWS = 256  # rows read per lock hold while iterating, so writers never wait long
# Rows per INSERT statement: 5 parameters each, within the 999 of SQLite before 3.32.
INSERT_ROWS = 199

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    problem TEXT NULL,
    created_ms INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind, seq);
CREATE INDEX IF NOT EXISTS records_problem ON records (problem, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""

_RECOVERY = "move it aside; the swarm can re-sync history"
_log = logging.getLogger(__name__)


class StoreError(Exception):
    """The store file cannot be used; the message names the file and what to do."""


class StoreCorrupt(StoreError):
    """A stored record does not decode or does not hash to its id."""


class RecordStore:
    """Records by id in insertion order, plus a small key/value table for the loop's state.

    Safe to share between threads (trio.to_thread workers): one connection, one lock.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = connection
        self._lock = threading.Lock()
        # Intact records that today's schema refuses (written under older, looser rules, e.g.
        # before paths had a schema): skipped on read, never handed to a loop or a replay.
        self.outdated: set[str] = set()

    @classmethod
    def open(cls, path: Path, durable: bool = True) -> RecordStore:
        """Open (creating if needed) the store at `path`, check its integrity and schema.

        `durable=False` (simulations only) skips fsync: much faster, not crash-safe.
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
            with store._using() as conn:
                _prepare(conn, path, durable)
        except BaseException:
            db.close()
            raise
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

    def add_many(self, records: Iterable[Record]) -> int:
        """Store records in one transaction; returns how many were new.

        Rows go in multi-row INSERTs: called from a worker thread, every statement releases and
        retakes the GIL, and retaking it waits for a busy trio thread's switch interval (5 ms),
        so one statement per row made a batch of hundreds take seconds.
        """
        rows = [_row(record) for record in records]
        with self._using() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                added = 0
                for start in range(0, len(rows), INSERT_ROWS):
                    chunk = rows[start : start + INSERT_ROWS]
                    added += conn.execute(
                        "INSERT OR IGNORE INTO records (id, kind, problem, created_ms, body)"
                        " VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                        [value for row in chunk for value in row],
                    ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already on some errors
                    conn.execute("ROLLBACK")
                raise
        return added

    def get(self, record_id: str) -> Record | None:
        with self._using() as conn:
            row = conn.execute(
                "SELECT seq, id, kind, body FROM records WHERE id = ?", (record_id,)
            ).fetchone()
        return None if row is None else self._verified(row)

    def __contains__(self, record_id: object) -> bool:
        if not isinstance(record_id, str):
            return False
        with self._using() as conn:
            row = conn.execute("SELECT 1 FROM records WHERE id = ?", (record_id,)).fetchone()
        return row is not None

    def ids(self) -> set[str]:
        with self._using() as conn:
            return {str(row[0]) for row in conn.execute("SELECT id FROM records")}

    def count(self) -> int:
        with self._using() as conn:
            return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])

    def iter_records(self, kind: str | None = None, problem: str | None = None) -> Iterator[Record]:
        """Verified records in insertion order, filtered by kind and/or problem id; outdated
        ones (see `outdated`) are left out.

        `problem` matches experiments and hypotheses of that problem and the problem itself.
        Reads a page at a time, so other threads can write while a caller iterates.
        """
        where = "seq > ?"
        filters: list[str] = []
        if kind is not None:
            where += " AND kind = ?"
            filters.append(kind)
        if problem is not None:
            where += " AND problem = ?"
            filters.append(problem)
        query = f"SELECT seq, id, kind, body FROM records WHERE {where} ORDER BY seq LIMIT ?"
        last_seq = 0
        while True:
            with self._using() as conn:
                rows = conn.execute(query, (last_seq, *filters, PAGE_ROWS)).fetchall()
            for row in rows:
                record = self._verified(row)
                if record is not None:
                    yield record
            if len(rows) < PAGE_ROWS:
                return
            last_seq = int(rows[-1][0])

    def load_dag(self) -> ResearchDag:
        """Every stored record, verified, as a Research DAG."""
        return ResearchDag(self.iter_records())

    # ---- meta ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> bytes | None:
        with self._using() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes) -> None:
        with self._using() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ---- internals -----------------------------------------------------------------------

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock; SQLite's errors leave as StoreError naming the file."""
        with self._lock:
            if self._db is None:
                raise StoreError(f"record store {self.path} is closed")
            try:
                yield self._db
            except sqlite3.OperationalError as error:
                if "locked" in str(error) or "busy" in str(error):
                    raise StoreError(
                        f"record store {self.path} is locked by another process ({error});"
                        " is another swarm node using the same data directory?"
                    ) from None
                raise StoreError(f"record store {self.path} failed: {error}") from None
            except sqlite3.DatabaseError as error:
                raise StoreError(
                    f"record store {self.path} is damaged ({error}); {_RECOVERY}"
                ) from None

    def _verified(self, row: tuple[int, str, str, bytes]) -> Record | None:
        """The row's record; None if it is outdated; StoreCorrupt if it was altered."""
        seq, record_id, kind, body = row
        try:
            record = decode_record(bytes(body))
        except RecordError as error:
            if _intact(bytes(body), record_id):
                self._skip_outdated(record_id, seq, str(error))
                return None
            raise StoreCorrupt(
                f"record store {self.path}: record {record_id} (seq {seq}) does not decode"
                f" ({error}); {_RECOVERY}"
            ) from None
        if record.id != record_id or record.kind != kind:
            if record.kind == kind and _intact(bytes(body), record_id):
                # Decodes, but today's encoding of it differs (a field was added with a value
                # the old bytes lack): its id would change, so it is not this record any more.
                self._skip_outdated(record_id, seq, f"it now hashes to {record.id}")
                return None
            raise StoreCorrupt(
                f"record store {self.path}: record {record_id} (seq {seq}) hashes to"
                f" {record.id} ({record.kind}); its body was altered; {_RECOVERY}"
            )
        return record

    def _skip_outdated(self, record_id: str, seq: int, why: str) -> None:
        if record_id not in self.outdated:
            self.outdated.add(record_id)
            _log.warning(
                "record store %s: skipping record %s (seq %d): it no longer passes the record"
                " schema (%s)", self.path, record_id, seq, why
            )


def _prepare(conn: sqlite3.Connection, path: Path, durable: bool = True) -> None:
    """Check the file, set durability pragmas and create or check the schema."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    check = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    if check != ["ok"]:
        detail = " ".join(" ".join(check).split())  # quick_check rows span lines; keep one
        raise StoreError(f"record store {path} is damaged ({detail[:300]}); {_RECOVERY}")
    # WAL + FULL: a commit is on disk (WAL fsynced) before add() returns, so a record that
    # add() reported survives kill -9 and power loss.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"record store {path} has schema version {version}; this swarm reads up to"
            f" {SCHEMA_VERSION}: upgrade swarm or use another data directory"
        )
    if version == 0:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already on some errors
                conn.execute("ROLLBACK")
            raise


def _intact(body: bytes, record_id: str) -> bool:
    """Do the bytes still hash to the id they were stored under (then only the rules changed)?"""
    try:
        return encoded_record_id(body) == record_id
    except RecordError:
        return False


def _row(record: Record) -> tuple[str, str, str | None, int, bytes]:
    return record.id, record.kind, _problem_of(record), record.created_ms, encode_record(record)


def _problem_of(record: Record) -> str | None:
    if isinstance(record, Problem):
        return record.id
    if isinstance(record, Experiment | Hypothesis):
        return record.problem
    return None
