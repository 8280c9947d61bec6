"""The node's durable record journal: an SQLite file that keeps every committed record."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import msgpack

from node.store_rows import (
    MAX_BLOB_BYTES,
    MAX_BODY_BYTES,
    Damaged,
    ReadRow,
    Row,
    checked_values,
    deflate,
    files_dictionary,
    inflate,
    intact,
    pack_canonical,
    problem_of,
    unpack_refs,
)
from research_dag import (
    DERIVED_AUTHOR,
    Experiment,
    Record,
    RecordError,
    ResearchDag,
    canonical_encode,
    decode_record,
    encode_record,
    validate_record,
)

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000
PAGE_ROWS = 256  # rows read per lock hold while iterating, so writers never wait long
# Rows per INSERT statement: 6 parameters each (4 a blob), within the 999 of SQLite before
# 3.32.
INSERT_ROWS = 166

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
# Version 2: an experiment's strategy files live once each in `blobs`, keyed by the sha256 of
# their bytes and stored as a zlib delta against the parent experiment's copy of the same file
# (most attempts change one line); the record row keeps `refs` ({path: digest}) and a body
# without the files. A row with NULL refs holds the record's full bytes (every row version 1
# wrote, and every record that is not an experiment), so both layouts are read.
_SCHEMA_2 = """
ALTER TABLE records ADD COLUMN refs BLOB NULL;
CREATE TABLE IF NOT EXISTS blobs (
    digest BLOB PRIMARY KEY,
    base BLOB NULL,
    depth INTEGER NOT NULL,
    data BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dropped (id TEXT PRIMARY KEY) WITHOUT ROWID;
"""
# Deltas chain back to a full copy at most this many steps, so reading a file decompresses at
# most this many blobs (and a damaged blob spoils at most this many descendants' files).
MAX_DELTA_DEPTH = 16
# File contents kept decompressed, by their bytes: a loop's next children share a parent, and a
# sync fetch reads 1,024 records scattered over all history (ids in id order), whose delta
# chains share ancestors; with 256 files a served record inflated ~7 deltas, with 16 MiB ~3.
BLOB_CACHE_BYTES = 16 * 1024 * 1024

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
        self._blobs: OrderedDict[bytes, bytes] = OrderedDict()  # digest -> file, recent last
        self._blob_bytes = 0  # their total size, at most BLOB_CACHE_BYTES

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
        so one statement per row made a batch of hundreds take seconds. An experiment's files
        go into `blobs` in the same transaction, so a record is never stored without them.
        """
        batch = list(records)
        with self._using() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._rows(conn, batch)
                added = 0
                for start in range(0, len(rows), INSERT_ROWS):
                    chunk = rows[start : start + INSERT_ROWS]
                    added += conn.execute(
                        "INSERT OR IGNORE INTO records (id, kind, problem, created_ms, body, refs)"
                        " VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk)),
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
                "SELECT seq, id, kind, body, refs FROM records WHERE id = ?", (record_id,)
            ).fetchone()
            read = None if row is None else self._read(conn, row)
        return None if read is None else self._verified(read)

    def get_many(self, record_ids: Iterable[str]) -> list[Record]:
        """The records of `record_ids` that are stored, in the order they were stored (files
        shared along a lineage are then inflated once, not once per record)."""
        found = sorted(self._read_many(record_ids))
        return [record for row in found if (record := self._verified(row)) is not None]

    def _read_many(self, record_ids: Iterable[str]) -> Iterator[ReadRow]:
        """The stored rows of `record_ids`, read PAGE_ROWS per lock hold, each page in stored
        order (files shared along a lineage are inflated once per page)."""
        wanted = list(dict.fromkeys(record_ids))
        for start in range(0, len(wanted), PAGE_ROWS):
            chunk = wanted[start : start + PAGE_ROWS]
            with self._using() as conn:
                rows = conn.execute(
                    "SELECT seq, id, kind, body, refs FROM records WHERE id IN"
                    f" ({', '.join('?' * len(chunk))})", chunk
                ).fetchall()
                read = [self._read(conn, row) for row in sorted(rows)]
            yield from read

    def encoded_many(self, record_ids: Iterable[str]) -> list[tuple[str, bytes]]:
        """The stored bytes of the records of `record_ids` that are stored and signed, as
        (id, bytes) in the order they were stored: what a sync fetch sends.

        Each is re-assembled and its unsigned part re-hashed against its id (sha256 in C, a few
        microseconds), with every file's digest checked on the way, so a damaged row or file is
        never sent (a peer refuses a whole response for one bad record, and scores us down);
        damage raises StoreCorrupt as `get` does. Not decoded into a record, validated or
        signature-checked again: every row was when it was taken in, and the requester checks
        each record anyway. Rows `outdated` names are left out, but only those already read:
        ask for ids the node holds in its DAG (that load skipped them all).
        """
        found: list[tuple[int, str, bytes]] = []
        for row in self._read_many(record_ids):
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
                continue
            values, encoded = checked
            # Derived records travel unsigned (docs/protocol.md, "Derived records"); intake
            # takes in no other kind with that author.
            if values.get("signature") or values.get("author") == DERIVED_AUTHOR:
                found.append((seq, record_id, encoded))
        found.sort()
        return [(record_id, encoded) for _, record_id, encoded in found]

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
        query = f"SELECT seq, id, kind, body, refs FROM records WHERE {where} ORDER BY seq LIMIT ?"
        last_seq = 0
        while True:
            with self._using() as conn:
                rows = conn.execute(query, (last_seq, *filters, PAGE_ROWS)).fetchall()
                read = [self._read(conn, row) for row in rows]
            for row in read:
                record = self._verified(row)
                if record is not None:
                    yield record
            if len(rows) < PAGE_ROWS:
                return
            last_seq = int(rows[-1][0])

    def load_dag(self, cache: int | None = None) -> ResearchDag:
        """Every stored record, verified, as a Research DAG. With `cache`, the DAG keeps every
        record's header but only `cache` whole records (and the problems), reading the rest
        back from this store when asked: the store must then stay open as long as the DAG."""
        if cache is None:
            return ResearchDag(self.iter_records())
        return ResearchDag(self.iter_records(), load=self.get_many, cache=cache)

    # ---- retention (swarm gc) --------------------------------------------------------------

    def drop(self, record_ids: Iterable[str]) -> int:
        """Delete records for good, in one transaction, with the files only they used; their
        ids are remembered (`dropped_ids`) so a sync does not fetch them again. Returns how many
        records were deleted. Which records may go is the caller's policy (node/retention.py)."""
        ids = list(dict.fromkeys(record_ids))
        with self._using() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = 0
                for start in range(0, len(ids), PAGE_ROWS):
                    chunk = ids[start : start + PAGE_ROWS]
                    marks = ", ".join("?" * len(chunk))
                    conn.execute("INSERT OR IGNORE INTO dropped (id) VALUES "
                                 + ", ".join(["(?)"] * len(chunk)), chunk)
                    deleted += conn.execute(f"DELETE FROM records WHERE id IN ({marks})",
                                            chunk).rowcount
                self._drop_unused_blobs(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._blobs.clear()
            self._blob_bytes = 0
        return deleted

    def _drop_unused_blobs(self, conn: sqlite3.Connection) -> None:
        """Blobs no remaining record names, unless a kept blob is a delta against them."""
        used: set[bytes] = set()
        for (refs,) in conn.execute("SELECT refs FROM records WHERE refs IS NOT NULL"):
            with contextlib.suppress(Damaged):  # a damaged row keeps nothing alive
                used.update(unpack_refs(bytes(refs)).values())
        bases = {bytes(d): None if b is None else bytes(b)
                 for d, b in conn.execute("SELECT digest, base FROM blobs")}
        needed: set[bytes] = set()
        for digest in used:
            step: bytes | None = digest
            while step is not None and step not in needed:
                needed.add(step)
                step = bases.get(step)
        unused = [digest for digest in bases if digest not in needed]
        for start in range(0, len(unused), PAGE_ROWS):
            chunk = unused[start : start + PAGE_ROWS]
            conn.execute(f"DELETE FROM blobs WHERE digest IN ({', '.join('?' * len(chunk))})",
                         chunk)

    def dropped_ids(self) -> set[str]:
        """Ids `drop` deleted: not to be taken in again."""
        with self._using() as conn:
            return {str(row[0]) for row in conn.execute("SELECT id FROM dropped")}

    def compact(self) -> None:
        """Give the space of deleted rows back to the file system (VACUUM: rewrites the file)."""
        with self._using() as conn:
            conn.execute("VACUUM")

    def size(self) -> int:
        """Bytes the store takes on disk (database and write-ahead log)."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

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

    def _rows(self, conn: sqlite3.Connection, records: list[Record]) -> list[Row]:
        """The rows for `records`; experiments' files go into `blobs` on the way.

        What the batch needs from the database (its parents' file lists, which files and
        bases are stored) is read in a few statements for the whole batch, not a few per
        record: a late joiner stores 1,024 records a response."""
        experiments = [record for record in records if isinstance(record, Experiment)]
        contents: dict[bytes, bytes] = {}
        refs_of: dict[str, dict[str, bytes]] = {}
        for experiment in experiments:
            refs: dict[str, bytes] = {}
            for path in sorted(experiment.strategy):  # sorted: the canonical order
                content = experiment.strategy[path].encode()
                digest = hashlib.sha256(content).digest()
                refs[path] = digest
                contents[digest] = content
            refs_of[experiment.id] = refs
        stored_refs = self._stored_refs(conn, {
            e.parent for e in experiments if e.parent is not None and e.parent not in refs_of})
        depths = self._blob_depths(conn, set(contents).union(
            *(refs.values() for refs in stored_refs.values())))
        new_blobs: list[tuple[bytes, bytes | None, int, bytes]] = []
        done: dict[str, dict[str, bytes]] = {}  # this batch's experiments stored so far
        rows: list[Row] = []
        for record in records:
            if not isinstance(record, Experiment):
                rows.append((record.id, record.kind, problem_of(record), record.created_ms,
                             encode_record(record), None))
                continue
            refs = refs_of[record.id]
            parent_refs = None if record.parent is None else (
                done.get(record.parent) or stored_refs.get(record.parent))
            for path, digest in refs.items():
                if digest in depths:
                    continue
                base = None if parent_refs is None else parent_refs.get(path)
                content = contents[digest]
                data: bytes | None = None
                depth, stored_base = 0, None
                if base is not None and base != digest and base in depths and (
                        depths[base] + 1 < MAX_DELTA_DEPTH):
                    with contextlib.suppress(Damaged):  # a damaged base: store this whole
                        data = deflate(content, contents.get(base) or self._blob(conn, base))
                        depth, stored_base = depths[base] + 1, base
                if data is None:
                    data = deflate(content, None)
                depths[digest] = depth
                new_blobs.append((digest, stored_base, depth, data))
                self._remember_blob(digest, content)
            done[record.id] = refs
            # The record's canonical bytes (cached when it was decoded or first encoded) give
            # its plain values in canonical order: re-packed without sorting them in Python.
            stripped = msgpack.unpackb(encode_record(record), raw=False)
            stripped["strategy"] = refs
            files = files_dictionary(refs, contents)
            rows.append((record.id, record.kind, record.problem, record.created_ms,
                         deflate(pack_canonical(stripped), files), pack_canonical(refs)))
        for start in range(0, len(new_blobs), INSERT_ROWS):
            chunk = new_blobs[start : start + INSERT_ROWS]
            conn.execute("INSERT INTO blobs (digest, base, depth, data) VALUES "
                         + ", ".join(["(?, ?, ?, ?)"] * len(chunk)),
                         [value for blob in chunk for value in blob])
        return rows

    def _stored_refs(self, conn: sqlite3.Connection, ids: set[str]
                     ) -> dict[str, dict[str, bytes]]:
        """The file lists of these stored experiments (bases of small deltas); damaged ones are
        left out (reading that record will say so; its children's files are stored whole)."""
        found: dict[str, dict[str, bytes]] = {}
        wanted = sorted(ids)
        for start in range(0, len(wanted), PAGE_ROWS):
            chunk = wanted[start : start + PAGE_ROWS]
            for record_id, refs in conn.execute(
                    "SELECT id, refs FROM records WHERE refs IS NOT NULL AND id IN"
                    f" ({', '.join('?' * len(chunk))})", chunk):
                with contextlib.suppress(Damaged):
                    found[str(record_id)] = unpack_refs(bytes(refs))
        return found

    def _blob_depths(self, conn: sqlite3.Connection, digests: set[bytes]) -> dict[bytes, int]:
        """Which of these files are stored, with their delta depth."""
        found: dict[bytes, int] = {}
        wanted = sorted(digests)
        for start in range(0, len(wanted), PAGE_ROWS):
            chunk = wanted[start : start + PAGE_ROWS]
            found.update((bytes(digest), int(depth)) for digest, depth in conn.execute(
                f"SELECT digest, depth FROM blobs WHERE digest IN ({', '.join('?' * len(chunk))})",
                chunk))
        return found

    def _blob(self, conn: sqlite3.Connection, digest: bytes) -> bytes:
        """A file's bytes by digest: its delta chain inflated and every step's hash checked."""
        cached = self._blobs.get(digest)
        if cached is not None:
            self._blobs.move_to_end(digest)
            return cached
        chain: list[tuple[bytes, bytes]] = []
        content: bytes | None = None
        wanted: bytes | None = digest
        while wanted is not None:
            content = self._blobs.get(wanted)
            if content is not None:
                break
            if len(chain) > MAX_DELTA_DEPTH:
                raise Damaged(f"blob {digest.hex()[:16]} chains past {MAX_DELTA_DEPTH} deltas")
            row = conn.execute("SELECT base, data FROM blobs WHERE digest = ?", (wanted,)
                               ).fetchone()
            if row is None:
                raise Damaged(f"blob {wanted.hex()[:16]} is missing")
            chain.append((wanted, bytes(row[1])))
            wanted = None if row[0] is None else bytes(row[0])
        for step, data in reversed(chain):
            content = inflate(data, content, MAX_BLOB_BYTES)
            if hashlib.sha256(content).digest() != step:
                raise Damaged(f"blob {step.hex()[:16]} does not hash to its name")
            self._remember_blob(step, content)
        assert content is not None
        return content

    def _remember_blob(self, digest: bytes, content: bytes) -> None:
        if digest in self._blobs:
            self._blobs.move_to_end(digest)
            return
        self._blobs[digest] = content
        self._blob_bytes += len(content)
        while self._blob_bytes > BLOB_CACHE_BYTES:
            self._blob_bytes -= len(self._blobs.popitem(last=False)[1])

    def _read(self, conn: sqlite3.Connection, row: tuple[int, str, str, bytes, bytes | None]
              ) -> ReadRow:
        """The row with its record re-assembled: its full bytes, or for a row without its files
        the plain values they encode (one encoding fewer per read), or why it cannot be."""
        seq, record_id, kind, body, refs = row
        if refs is None:
            return seq, record_id, kind, bytes(body)
        try:
            digests = unpack_refs(bytes(refs))
            files = {digest: self._blob(conn, digest) for digest in digests.values()}
            raw = msgpack.unpackb(inflate(bytes(body), files_dictionary(digests, files),
                                           MAX_BODY_BYTES), raw=False)
            if not isinstance(raw, dict) or not isinstance(raw.get("strategy"), dict):
                raise Damaged("its stored body is not a record without files")
            raw["strategy"] = {path: files[digest].decode()
                               for path, digest in raw["strategy"].items()}
            return seq, record_id, kind, raw
        except (Damaged, KeyError, TypeError, ValueError, UnicodeDecodeError,
                msgpack.UnpackException) as error:
            return seq, record_id, kind, f"{type(error).__name__}: {error}"

    def _verified(self, row: ReadRow) -> Record | None:
        """The row's record; None if it is outdated; StoreCorrupt if it was altered."""
        seq, record_id, kind, body = row
        checked = checked_values(row)
        if checked is not None:
            # The values hash to the id they were stored under: intact. Today's schema must
            # still read them back as exactly these values, else the record is outdated.
            values, encoded = checked
            try:
                record = validate_record(values)
            except RecordError as error:
                self._skip_outdated(record_id, seq, str(error))
                return None
            if record.plain() == values:
                # Its id and bytes are those just hashed: cached as `record.id` and
                # `encode_record` would have computed them (a canonical re-encoding in Python,
                # most of a read's cost), as a decoded record caches them.
                object.__setattr__(record, "_id_cache", record_id)
                object.__setattr__(record, "_encoded_cache", encoded)
                return record
            self._skip_outdated(record_id, seq, f"it now hashes to {record.id}")
            return None
        if isinstance(body, dict):
            try:
                record = validate_record(body)
                if record.id == record_id and record.kind == kind:
                    return record
                body = canonical_encode(body)  # the checks below name what is wrong
            except RecordError:
                try:
                    body = canonical_encode(body)
                except RecordError as error:
                    body = f"{type(error).__name__}: {error}"
        if isinstance(body, str):
            raise StoreCorrupt(
                f"record store {self.path}: record {record_id} (seq {seq}) does not decode"
                f" ({body}); {_RECOVERY}"
            )
        try:
            record = decode_record(bytes(body))
        except RecordError as error:
            if intact(bytes(body), record_id):
                self._skip_outdated(record_id, seq, str(error))
                return None
            raise StoreCorrupt(
                f"record store {self.path}: record {record_id} (seq {seq}) does not decode"
                f" ({error}); {_RECOVERY}"
            ) from None
        if record.id != record_id or record.kind != kind:
            if record.kind == kind and intact(bytes(body), record_id):
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
    if version < SCHEMA_VERSION:  # a new file, or one version 1 wrote: upgraded in place
        conn.execute("BEGIN IMMEDIATE")
        try:
            steps = (_SCHEMA, _SCHEMA_2) if version == 0 else (_SCHEMA_2,)
            for statement in ";".join(steps).split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already on some errors
                conn.execute("ROLLBACK")
            raise
    # Version 2 files written before `swarm gc` existed (the same day) lack this table; a no-op
    # when it exists.
    conn.execute("CREATE TABLE IF NOT EXISTS dropped (id TEXT PRIMARY KEY) WITHOUT ROWID")
