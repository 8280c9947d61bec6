"""Ballast: disk space a node holds in a file of its own and gives back to its own records.

A node keeps peers' records out of its reserve of free space (`NodeConfig.min_free_bytes`), but
the reserve is read with statfs, and some limits are not there: a user's or a project's quota
(the rule on shared clusters), or another program filling the disk between two looks. Peers'
records then fill the file up to the limit, and the node's next write of its own failed: the
node stopped. So `swarm join` allocates a ballast file beside the store (real blocks, which a
quota counts); the first of the node's own writes that finds the disk full deletes it and
writes into the space it frees, and no peer's record is stored again until the ballast could
be allocated again (tried at most once a `RETRY_S`). docs/storage.md, "A full disk".
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path

BALLAST_BYTES = 64 << 20  # ~200,000 of the node's own attempts (0.3 KB each, docs/storage.md)
RETRY_S = 60.0  # between attempts to allocate a released ballast again
_CHUNK = 1 << 20  # written at a time where the file system cannot fallocate
# What a write answers when the space is not there: no space, a quota, a file size limit.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_log = logging.getLogger(__name__)


class Ballast:
    """`size` bytes held in the file `path`, or released. Safe to share between threads."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._lock = threading.Lock()
        self._held = False
        self._next_try = 0.0
        self.released = 0  # times it was given up for the node's own records

    @property
    def held(self) -> bool:
        return self._held

    def ready(self) -> bool:
        """Held, or released with an attempt to hold it again due (`hold` makes it, in the
        thread that writes: allocating may write the whole size where fallocate is missing)."""
        return self._held or time.monotonic() >= self._next_try

    def hold(self) -> bool:
        """Whether the ballast is held, allocating it first if it is not and the last attempt
        is `RETRY_S` old. An attempt that finds no room leaves no file behind."""
        with self._lock:
            if self._held:
                return True
            now = time.monotonic()
            if now < self._next_try:
                return False
            self._next_try = now + RETRY_S
            try:
                _allocate(self.path, self.size)
            except OSError as error:
                if error.errno not in _NO_ROOM:
                    _log.warning("cannot allocate the ballast %s: %s", self.path, error)
                _remove(self.path)
                return False
            self._held = True
            return True

    def release(self) -> bool:
        """Delete the ballast, freeing its space for the node's own records; whether there
        was one to delete (False: nothing was freed, the write will fail again)."""
        with self._lock:
            if not self._held:
                return False
            self._held = False
            self._next_try = time.monotonic() + RETRY_S
            self.released += 1
            _remove(self.path)
            return True


def _allocate(path: Path, size: int) -> None:
    """A file of `size` bytes whose blocks are allocated (a sparse file frees nothing): kept
    if it is already whole (a restart), else written afresh and synced."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(path, flags, 0o600)
    try:
        stat = os.fstat(descriptor)
        if stat.st_size == size and stat.st_blocks * 512 >= size:
            return
        os.ftruncate(descriptor, 0)
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(descriptor, 0, size)
            except OSError as error:
                if error.errno != errno.EOPNOTSUPP:
                    raise
                _write_zeros(descriptor, size)
        else:  # macOS: no posix_fallocate
            _write_zeros(descriptor, size)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_zeros(descriptor: int, size: int) -> None:
    zeros = bytes(_CHUNK)
    written = 0
    while written < size:
        written += os.write(descriptor, zeros[:min(_CHUNK, size - written)])


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
