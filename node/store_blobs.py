"""The record store's strategy files: each stored once by content in `blobs`, as a zlib delta
against the parent experiment's copy of the same file, with a cache of recent contents."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable

from node.store_rows import MAX_BLOB_BYTES, Damaged, deflate, inflate

# Deltas chain back to a full copy at most this many steps, so reading a file decompresses at
# most this many blobs (and a damaged blob spoils at most this many descendants' files).
MAX_DELTA_DEPTH = 16
# File contents kept decompressed, by their bytes: a loop's next children share a parent, and a
# sync fetch reads 1,024 records scattered over all history (ids in id order), whose delta
# chains share ancestors; with 256 files a served record inflated ~7 deltas, with 16 MiB ~3.
BLOB_CACHE_BYTES = 16 * 1024 * 1024
PAGE = 256  # digests or numbers per IN (...) statement
# Blob rows per INSERT statement (5 parameters each), within SQLite's 999 before 3.32.
INSERT_BLOBS = 190


def key_of(digest: bytes) -> int:
    """A file's key in the blobs table: the first 8 bytes of its sha256, as SQLite's integer.
    Its record's id covers the whole file; this names damage and finds copies."""
    return int.from_bytes(digest[:8], "big", signed=True)


def _same(blobs: Blobs, conn: sqlite3.Connection, number: int, content: bytes) -> bool:
    try:
        return blobs.content(conn, number) == content
    except Damaged:
        return False  # a damaged copy is not this file: it is stored again


class Blobs:
    """Files by row number (a record's `refs`) and by sha256 digest; every read is checked
    against the digest. Used under the store's lock, with its connection."""

    def __init__(self, cache_bytes: int = BLOB_CACHE_BYTES) -> None:
        self._cache: OrderedDict[int, bytes] = OrderedDict()  # row number -> file, recent last
        self._cached = 0  # their total size, at most `cache_bytes`
        self._cache_bytes = cache_bytes

    def clear(self) -> None:
        self._cache.clear()
        self._cached = 0

    def stored(self, conn: sqlite3.Connection, contents: dict[bytes, bytes]
               ) -> dict[bytes, tuple[int, int]]:
        """Which of these files (digest -> bytes) are stored: digest -> (row number, delta
        depth). Rows are found by the first 8 bytes of the digest and compared byte for byte:
        anyone can make two files whose digests share 8 bytes."""
        keys: dict[int, list[bytes]] = {}
        for digest in contents:
            keys.setdefault(key_of(digest), []).append(digest)
        found: dict[bytes, tuple[int, int]] = {}
        wanted = sorted(keys)
        for start in range(0, len(wanted), PAGE):
            chunk = wanted[start : start + PAGE]
            marks = ", ".join("?" * len(chunk))
            for n, key, depth in conn.execute(
                    f"SELECT n, key, depth FROM blobs WHERE key IN ({marks})", chunk).fetchall():
                for digest in keys.get(int(key), ()):
                    if digest not in found and _same(self, conn, int(n), contents[digest]):
                        found[digest] = (int(n), int(depth))
        return found

    def depths(self, conn: sqlite3.Connection, numbers: Iterable[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        wanted = sorted(set(numbers))
        for start in range(0, len(wanted), PAGE):
            chunk = wanted[start : start + PAGE]
            found.update((int(n), int(depth)) for n, depth in conn.execute(
                f"SELECT n, depth FROM blobs WHERE n IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def add(self, conn: sqlite3.Connection, files: list[tuple[bytes, bytes, int | bytes | None]]
            ) -> dict[bytes, int]:
        """Store the files (digest, bytes, parent's copy) not stored yet, in that order; the
        parent's copy is a stored file's row number, or the digest of a file earlier here, or
        None. Each is a delta against the parent's copy when its chain is short enough.
        Returns every file's row number."""
        contents = {digest: content for digest, content, _ in files}
        known = self.stored(conn, contents)
        depths = self.depths(conn, (base for _, _, base in files if isinstance(base, int)))
        next_n = int(conn.execute("SELECT coalesce(max(n), 0) FROM blobs").fetchone()[0]) + 1
        rows: list[tuple[int, int, int | None, int, bytes]] = []
        for digest, content, base in files:
            if digest in known:
                continue
            if isinstance(base, bytes):
                base_n, base_depth = known.get(base, (None, MAX_DELTA_DEPTH))
            else:
                base_n, base_depth = base, depths.get(base or 0, MAX_DELTA_DEPTH)
            data: bytes | None = None
            depth, stored_base = 0, None
            if base_n is not None and base_depth + 1 < MAX_DELTA_DEPTH:
                with contextlib.suppress(Damaged):  # a damaged base: store this one whole
                    base_content = (contents[base] if isinstance(base, bytes)
                                    else self.content(conn, base_n))
                    data = deflate(content, base_content)
                    depth, stored_base = base_depth + 1, base_n
            if data is None:
                data = deflate(content, None)
            rows.append((next_n, key_of(digest), stored_base, depth, data))
            known[digest] = (next_n, depth)
            self._remember(next_n, content)
            next_n += 1
        for start in range(0, len(rows), INSERT_BLOBS):
            chunk = rows[start : start + INSERT_BLOBS]
            conn.execute("INSERT INTO blobs (n, key, base, depth, data) VALUES "
                         + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                         [value for row in chunk for value in row])
        return {digest: known[digest][0] for digest in contents}

    def content(self, conn: sqlite3.Connection, number: int) -> bytes:
        """A file's bytes: its delta chain inflated and every step's hash checked."""
        cached = self._cache.get(number)
        if cached is not None:
            self._cache.move_to_end(number)
            return cached
        chain: list[tuple[int, int, bytes]] = []
        content: bytes | None = None
        wanted: int | None = number
        while wanted is not None:
            content = self._cache.get(wanted)
            if content is not None:
                break
            if len(chain) > MAX_DELTA_DEPTH:
                raise Damaged(f"file {number} chains past {MAX_DELTA_DEPTH} deltas")
            row = conn.execute("SELECT key, base, data FROM blobs WHERE n = ?", (wanted,)
                               ).fetchone()
            if row is None:
                raise Damaged(f"file {wanted} is missing")
            chain.append((wanted, int(row[0]), bytes(row[2])))
            wanted = None if row[1] is None else int(row[1])
        for step, key, data in reversed(chain):
            content = inflate(data, content, MAX_BLOB_BYTES)
            if key_of(hashlib.sha256(content).digest()) != key:
                raise Damaged(f"file {step} does not hash to its name")
            self._remember(step, content)
        assert content is not None
        return content

    def _remember(self, number: int, content: bytes) -> None:
        if number in self._cache:
            self._cache.move_to_end(number)
            return
        self._cache[number] = content
        self._cached += len(content)
        while self._cached > self._cache_bytes:
            self._cached -= len(self._cache.popitem(last=False)[1])

    def drop_unused(self, conn: sqlite3.Connection, used: set[int]) -> None:
        """Delete blobs no record uses, unless a kept blob is a delta against them."""
        bases = {int(n): None if b is None else int(b)
                 for n, b in conn.execute("SELECT n, base FROM blobs")}
        needed: set[int] = set()
        for number in used:
            step: int | None = number
            while step is not None and step not in needed:
                needed.add(step)
                step = bases.get(step)
        unused = [n for n in bases if n not in needed]
        for start in range(0, len(unused), PAGE):
            chunk = unused[start : start + PAGE]
            conn.execute(f"DELETE FROM blobs WHERE n IN ({', '.join('?' * len(chunk))})", chunk)
        self.clear()
