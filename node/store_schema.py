"""The record store's tables (schema version 3), the checks and pragmas a store file gets when
opened, and the small `names` table that turns kinds, authors, path sets and relations into
integers."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 10_000
RECOVERY = "move it aside; the swarm can re-sync history"
_ID = re.compile(r"[0-9a-f]{64}")  # a record id as callers give it (stored: its 32 bytes)
# Kinds get the first names, in this order, so that code 2 is "experiment" in the partial index
# below; a kind added later gets the next free number.
KINDS = ("problem", "experiment", "verification", "pattern", "hypothesis")
EXPERIMENT = 2
NOT_HELD = 0  # the kind of a row whose record is not held: named by one that is, or dropped

# Version 3: one row per id a held record holds or names. A held record's row carries what the
# Research DAG asks of it (its header: kind, problem, parent, time, author, ok score, file set)
# as columns, so the DAG's index lives here, not in memory; an id only named (a parent not
# arrived yet, a dropped record) has a row of kind NOT_HELD, so that a reference is always a
# row number. References that are not columns (a pattern's evidence, a verification's
# experiment...) are `edges`. The body holds the rest of the record (node/store_rows.py).
SCHEMA = """
CREATE TABLE records (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    problem INTEGER NULL,
    parent INTEGER NULL,
    created_ms INTEGER NULL,
    author INTEGER NULL,
    score REAL NULL,
    paths INTEGER NULL,
    body BLOB NULL,
    refs BLOB NULL
);
CREATE INDEX records_problem ON records (problem, kind) WHERE problem IS NOT NULL;
CREATE INDEX records_kind ON records (kind) WHERE kind != 2;
CREATE TABLE edges (
    owner INTEGER NOT NULL,
    source INTEGER NOT NULL,
    target INTEGER NOT NULL,
    rel INTEGER NOT NULL
);
CREATE INDEX edges_source ON edges (source, rel);
CREATE INDEX edges_target ON edges (target, rel);
CREATE TABLE names (n INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE blobs (
    n INTEGER PRIMARY KEY,
    key INTEGER NOT NULL,
    base INTEGER NULL,
    depth INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX blobs_key ON blobs (key);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE dropped (id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dictionaries (problem INTEGER PRIMARY KEY, data BLOB NOT NULL);
"""


def _is_id(record_id: object) -> bool:
    return isinstance(record_id, str) and _ID.fullmatch(record_id) is not None


class StoreError(Exception):
    """The store file cannot be used; the message names the file and what to do."""


class StoreCorrupt(StoreError):
    """A stored record does not decode or does not hash to its id."""


class StoreFull(StoreError):
    """The file system refused a write (full disk, a quota, a file size limit, the file's page
    limit) or it would have left less than the caller's reserve: rolled back whole."""


def prepare(conn: sqlite3.Connection, path: Path, durable: bool = True) -> int:
    """Check the file and set the durability pragmas; returns its schema version (0: new)."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    check = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    if check != ["ok"]:
        detail = " ".join(" ".join(check).split())  # quick_check rows span lines; keep one
        raise StoreError(f"record store {path} is damaged ({detail[:300]}); {RECOVERY}")
    # WAL + FULL: a commit is on disk (WAL fsynced) before add() returns, so a record that
    # add() reported survives kill -9 and power loss.
    conn.execute("PRAGMA journal_mode = WAL")
    # A checkpoint truncates the WAL back to 64 MiB: a peers' batch of 128 MiB left it that
    # size for good, free space the disk reserve (docs/storage.md) counted on.
    conn.execute(f"PRAGMA journal_size_limit = {64 << 20}")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"record store {path} has schema version {version}; this swarm reads up to"
            f" {SCHEMA_VERSION}: upgrade swarm or use another data directory"
        )
    return version


def create(conn: sqlite3.Connection) -> None:
    """The version 3 tables, in the caller's transaction."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany("INSERT INTO names (n, name) VALUES (?, ?)",
                     [(n, f"k:{kind}") for n, kind in enumerate(KINDS, start=1)])
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class Names:
    """Kinds ("k:"), authors ("a:"), file sets ("p:", sorted paths one a line) and relations
    ("r:") as the integers rows hold. Few and asked for on every read: cached in memory."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._names: dict[int, str] = {}

    def number(self, conn: sqlite3.Connection, name: str) -> int:
        """The number of `name`, added in the caller's write transaction if new."""
        found = self._numbers.get(name)
        if found is None:
            found = int(conn.execute("INSERT INTO names (name) VALUES (?) RETURNING n", (name,)
                                     ).fetchone()[0])
            self._numbers[name] = found
            self._names[found] = name
        return found

    def known(self, name: str) -> int | None:
        """The number of `name` if it has one (a query never adds names)."""
        return self._numbers.get(name)

    def name(self, number: int) -> str:
        found = self._names.get(number)
        if found is None:
            raise KeyError(f"no name {number}")
        return found[2:]

    def load(self, conn: sqlite3.Connection) -> None:
        """The names the file holds: on opening, after another process added some, and after
        a rolled-back transaction (names it added are gone). The maps are built aside and
        swapped in: threads read them without the store's lock (a derivation's queries, the
        dashboard's), and emptied in place they raised KeyError until loaded again."""
        numbers: dict[str, int] = {}
        names: dict[int, str] = {}
        for n, name in conn.execute("SELECT n, name FROM names"):
            numbers[str(name)] = int(n)
            names[int(n)] = str(name)
        self._numbers, self._names = numbers, names
