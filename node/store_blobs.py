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

    def stored(self, conn: sqlite3.Connection, digests: Iterable[bytes]
               ) -> dict[bytes, tuple[int, int]]:
        """Which of these files are stored: digest -> (row number, delta depth)."""
        found: dict[bytes, tuple[int, int]] = {}
        wanted = sorted(set(digests))
        for start in range(0, len(wanted), PAGE):
            chunk = wanted[start : start + PAGE]
            marks = ", ".join("?" * len(chunk))
            found.update((bytes(d), (int(n), int(depth))) for n, d, depth in conn.execute(
                f"SELECT n, digest, depth FROM blobs WHERE digest IN ({marks})", chunk))
        return found

    def digests(self, conn: sqlite3.Connection, numbers: Iterable[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        wanted = sorted(set(numbers))
        for start in range(0, len(wanted), PAGE):
            chunk = wanted[start : start + PAGE]
            found.update((int(n), bytes(digest)) for n, digest in conn.execute(
                f"SELECT n, digest FROM blobs WHERE n IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def add(self, conn: sqlite3.Connection, files: list[tuple[bytes, bytes, bytes | None]]
            ) -> dict[bytes, int]:
        """Store the files (digest, bytes, digest of the parent's copy or None) not stored yet,
        in that order, each as a delta against the parent's copy when that is stored (or comes
        earlier here) and its chain short enough; returns every file's row number."""
        known = self.stored(conn, [d for f in files for d in (f[0], f[2]) if d is not None])
        contents = {digest: content for digest, content, _ in files}
        next_n = int(conn.execute("SELECT coalesce(max(n), 0) FROM blobs").fetchone()[0]) + 1
        rows: list[tuple[int, bytes, int | None, int, bytes]] = []
        for digest, content, base in files:
            if digest in known:
                continue
            data: bytes | None = None
            depth, stored_base = 0, None
            found = None if base is None else known.get(base)
            if base is not None and found is not None and found[1] + 1 < MAX_DELTA_DEPTH:
                with contextlib.suppress(Damaged):  # a damaged base: store this one whole
                    base_content = contents.get(base) or self.content(conn, found[0])
                    data = deflate(content, base_content)
                    depth, stored_base = found[1] + 1, found[0]
            if data is None:
                data = deflate(content, None)
            rows.append((next_n, digest, stored_base, depth, data))
            known[digest] = (next_n, depth)
            self._remember(next_n, content)
            next_n += 1
        for start in range(0, len(rows), INSERT_BLOBS):
            chunk = rows[start : start + INSERT_BLOBS]
            conn.execute("INSERT INTO blobs (n, digest, base, depth, data) VALUES "
                         + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                         [value for row in chunk for value in row])
        return {digest: known[digest][0] for digest in contents}

    def content(self, conn: sqlite3.Connection, number: int) -> bytes:
        """A file's bytes: its delta chain inflated and every step's hash checked."""
        cached = self._cache.get(number)
        if cached is not None:
            self._cache.move_to_end(number)
            return cached
        chain: list[tuple[int, bytes, bytes]] = []
        content: bytes | None = None
        wanted: int | None = number
        while wanted is not None:
            content = self._cache.get(wanted)
            if content is not None:
                break
            if len(chain) > MAX_DELTA_DEPTH:
                raise Damaged(f"file {number} chains past {MAX_DELTA_DEPTH} deltas")
            row = conn.execute("SELECT digest, base, data FROM blobs WHERE n = ?", (wanted,)
                               ).fetchone()
            if row is None:
                raise Damaged(f"file {wanted} is missing")
            chain.append((wanted, bytes(row[0]), bytes(row[2])))
            wanted = None if row[1] is None else int(row[1])
        for step, digest, data in reversed(chain):
            content = inflate(data, content, MAX_BLOB_BYTES)
            if hashlib.sha256(content).digest() != digest:
                raise Damaged(f"file {digest.hex()[:16]} does not hash to its name")
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
