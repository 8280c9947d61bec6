"""Per-problem preset dictionaries for experiments' bodies: what a problem's attempts say alike
(their descriptions, mutation kinds, outcomes' shape), so each body deflates to what is its own
(~110 bytes, most of it the signature)."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict

from node.store_rows import BODY_WORDS, deflate, inflate

# A problem gets its dictionary once this many of its experiments are stored: their bodies
# (without the fields rows keep in columns), newest last, after BODY_WORDS.
SAMPLES = 32
WINDOW = 32768  # deflate looks back this far: a longer dictionary is cut to its end
CACHED = 16  # dictionaries kept in memory (a node researches a few problems)


class Words:
    """The dictionaries table (deflated), by the problem's row number, with the recently used
    in memory. Used under the store's lock, with its connection."""

    def __init__(self) -> None:
        self._cache: OrderedDict[int, bytes | None] = OrderedDict()

    def clear(self) -> None:
        self._cache.clear()

    def of(self, conn: sqlite3.Connection, problem: int) -> bytes | None:
        if problem in self._cache:
            self._cache.move_to_end(problem)
            return self._cache[problem]
        row = conn.execute("SELECT data FROM dictionaries WHERE problem = ?", (problem,)
                           ).fetchone()
        found = None if row is None else inflate(bytes(row[0]), None, WINDOW)
        self._keep(problem, found)
        return found

    def create(self, conn: sqlite3.Connection, problem: int, samples: list[bytes]) -> bytes:
        """The problem's dictionary from these packed bodies (in the caller's transaction)."""
        data = (BODY_WORDS + b"".join(samples[-SAMPLES:]))[-WINDOW:]
        conn.execute("INSERT INTO dictionaries (problem, data) VALUES (?, ?)",
                     (problem, deflate(data, None)))  # text: a quarter of its size
        self._keep(problem, data)
        return data

    def _keep(self, problem: int, data: bytes | None) -> None:
        self._cache[problem] = data
        self._cache.move_to_end(problem)
        while len(self._cache) > CACHED:
            self._cache.popitem(last=False)
