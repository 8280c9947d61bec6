"""Reading a store file that schema version 1 or 2 wrote, to upgrade it in place: its rows, in
the order they were stored, re-assembled as those versions stored them."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import msgpack

from node.store_blobs import MAX_DELTA_DEPTH
from node.store_rows import (
    BODY_WORDS,
    MAX_BLOB_BYTES,
    MAX_BODY_BYTES,
    Damaged,
    ReadRow,
    inflate,
)

PAGE_ROWS = 256
CACHED_FILES = 1024
# The old tables are renamed to these while their rows are copied into the new ones.
OLD_RECORDS = "records_v2"
OLD_BLOBS = "blobs_v2"
OLD_DROPPED = "dropped_v2"


def set_aside(conn: sqlite3.Connection, version: int) -> None:
    """Rename the old tables (and drop their indexes, whose names the new schema uses)."""
    conn.execute("DROP INDEX IF EXISTS records_kind")
    conn.execute("DROP INDEX IF EXISTS records_problem")
    conn.execute(f"ALTER TABLE records RENAME TO {OLD_RECORDS}")
    if version >= 2:
        conn.execute(f"ALTER TABLE blobs RENAME TO {OLD_BLOBS}")
    tables = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master")}
    if "dropped" in tables:
        conn.execute(f"ALTER TABLE dropped RENAME TO {OLD_DROPPED}")


def remove_old(conn: sqlite3.Connection) -> None:
    for table in (OLD_RECORDS, OLD_BLOBS, OLD_DROPPED):
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def old_dropped(conn: sqlite3.Connection) -> list[str]:
    tables = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master")}
    if OLD_DROPPED not in tables:
        return []
    return [str(row[0]) for row in conn.execute(f"SELECT id FROM {OLD_DROPPED}")]


def old_rows(conn: sqlite3.Connection, version: int) -> Iterator[ReadRow]:
    """Every old row re-assembled: full bytes, or for a version 2 experiment its plain values
    with its files put back, or why it cannot be (node/store_rows.py `verified` judges)."""
    files: OrderedDict[bytes, bytes] = OrderedDict()
    refs_column = "refs" if version >= 2 else "NULL"
    last = 0
    while True:
        rows = conn.execute(
            f"SELECT seq, id, kind, body, {refs_column} FROM {OLD_RECORDS} WHERE seq > ?"
            " ORDER BY seq LIMIT ?", (last, PAGE_ROWS)).fetchall()
        for seq, record_id, kind, body, refs in rows:
            yield _read(conn, files, int(seq), str(record_id), str(kind), bytes(body), refs)
        if len(rows) < PAGE_ROWS:
            return
        last = int(rows[-1][0])


def _read(conn: sqlite3.Connection, files: OrderedDict[bytes, bytes], seq: int, record_id: str,
          kind: str, body: bytes, refs: Any) -> ReadRow:
    if refs is None:
        return seq, record_id, kind, body
    try:
        digests = _unpack_refs(bytes(refs))
        contents = {digest: _file(conn, files, digest) for digest in digests.values()}
        dictionary = (BODY_WORDS + b"".join(contents[digests[p]] for p in sorted(digests))
                      )[-32768:]
        raw = msgpack.unpackb(inflate(body, dictionary, MAX_BODY_BYTES), raw=False)
        if not isinstance(raw, dict) or not isinstance(raw.get("strategy"), dict):
            raise Damaged("its stored body is not a record without files")
        raw["strategy"] = {path: contents[digest].decode()
                           for path, digest in raw["strategy"].items()}
        return seq, record_id, kind, raw
    except (Damaged, KeyError, TypeError, ValueError, UnicodeDecodeError,
            msgpack.UnpackException) as error:
        return seq, record_id, kind, f"{type(error).__name__}: {error}"


def _unpack_refs(data: bytes) -> dict[str, bytes]:
    try:
        refs = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException) as error:
        raise Damaged(f"its file list does not decode: {error}") from None
    if not isinstance(refs, dict) or not all(
        isinstance(k, str) and isinstance(v, bytes) and len(v) == 32 for k, v in refs.items()
    ):
        raise Damaged("its file list is not a map of paths to sha256 digests")
    return refs


def _file(conn: sqlite3.Connection, files: OrderedDict[bytes, bytes], digest: bytes) -> bytes:
    """A version 2 file by digest: its delta chain inflated, every step's hash checked."""
    chain: list[tuple[bytes, bytes]] = []
    content: bytes | None = None
    wanted: bytes | None = digest
    while wanted is not None:
        content = files.get(wanted)
        if content is not None:
            break
        if len(chain) > MAX_DELTA_DEPTH:
            raise Damaged(f"blob {digest.hex()[:16]} chains past {MAX_DELTA_DEPTH} deltas")
        row = conn.execute(f"SELECT base, data FROM {OLD_BLOBS} WHERE digest = ?", (wanted,)
                           ).fetchone()
        if row is None:
            raise Damaged(f"blob {wanted.hex()[:16]} is missing")
        chain.append((wanted, bytes(row[1])))
        wanted = None if row[0] is None else bytes(row[0])
    for step, data in reversed(chain):
        content = inflate(data, content, MAX_BLOB_BYTES)
        if hashlib.sha256(content).digest() != step:
            raise Damaged(f"blob {step.hex()[:16]} does not hash to its name")
        files[step] = content
        while len(files) > CACHED_FILES:
            files.popitem(last=False)
    assert content is not None
    with contextlib.suppress(KeyError):
        files.move_to_end(digest)
    return content
