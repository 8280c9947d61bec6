"""Ballast: disk space a node holds in a file of its own and gives back to its own records.

A node keeps peers' records out of its reserve of free space (`NodeConfig.min_free_bytes`), but
the reserve is read with statfs, and some limits are not there: a user's or a project's quota
(the rule on shared clusters), or another program filling the disk between two looks. Peers'
records then fill the file up to the limit, and the node's next write of its own failed: the
node stopped. So `swarm join` allocates a ballast file beside the store (real blocks, which a
quota counts); the first of the node's own writes that finds the disk full deletes it and
writes into the space it frees, and no peer's record is stored again until the ballast could
be allocated again (tried at most once a `RETRY_S`). The store calls `hold` and `release`
under its own lock, so no write runs while the ballast is being allocated or given up.
docs/storage.md, "A full disk".
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import threading
import time
from pathlib import Path

BALLAST_BYTES = 64 << 20  # ~200,000 of the node's own attempts (0.3 KB each, docs/storage.md)
RETRY_S = 60.0  # between attempts to allocate a released ballast again
_CHUNK = 1 << 20  # written at a time where the file system cannot fallocate
# What a write answers when the space is not there: no space, a quota, a file size limit.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_log = logging.getLogger(__name__)


class NotOurs(OSError):
    """Something other than a regular file of ours has the ballast's name."""


class Ballast:
    """`size` bytes held in the file `path`, or released. Safe to share between threads."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._lock = threading.Lock()
        self._held = False
        self._inode: tuple[int, int] | None = None  # (device, inode) of the file we hold
        self._next_try = 0.0
        self.disabled = ""  # why no ballast is ever held (its name is taken), if so
        self.released = 0  # times it was given up for the node's own records

    @property
    def held(self) -> bool:
        return self._held

    def ready(self) -> bool:
        """Held, or released with an attempt to hold it again due (`hold` makes it, in the
        thread that writes: allocating may write the whole size where fallocate is missing)."""
        return self._held or (not self.disabled and time.monotonic() >= self._next_try)

    def hold(self) -> bool:
        """Whether the ballast is held, allocating it first if it is not, the last attempt is
        `RETRY_S` old and the file system shows room for it twice over (an attempt that fills
        the disk to its last block would be one more thing to fail). An attempt that finds no
        room leaves no file behind; a name taken by something else (a directory, a FIFO, a
        link, a file with another link) is left alone and the ballast disabled."""
        with self._lock:
            if self._held:
                return True
            now = time.monotonic()
            if self.disabled or now < self._next_try:
                return False
            self._next_try = now + RETRY_S
            try:
                if shutil.disk_usage(self.path.parent).free < 2 * self.size:
                    return False
                self._inode = _allocate(self.path, self.size)
            except NotOurs as error:
                self.disabled = str(error)
                _log.warning("no ballast: %s", error)
                return False
            except OSError as error:
                if error.errno not in _NO_ROOM:
                    _log.warning("cannot allocate the ballast %s: %s", self.path, error)
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
            _remove(self.path, self._inode)
            self._inode = None
            return True


def _allocate(path: Path, size: int) -> tuple[int, int]:
    """A regular file of `size` bytes whose blocks are allocated (a sparse file frees
    nothing), kept if it is already whole (a restart), else written afresh and synced; its
    (device, inode). On failure the file is emptied and removed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ETXTBSY):
            raise NotOurs(error.errno, f"{path} is not a file this node made ({error})"
                          ) from None
        raise
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise NotOurs(errno.EEXIST, f"{path} is not a file this node made (a"
                          f" {'linked file' if stat.S_ISREG(info.st_mode) else 'special file'})")
        inode = (info.st_dev, info.st_ino)
        if info.st_size == size and info.st_blocks * 512 >= size:
            return inode
        try:
            os.ftruncate(descriptor, 0)
            _fill(descriptor, size)
            os.fsync(descriptor)
            if os.fstat(descriptor).st_blocks * 512 < size:  # compressed or thin: holds nothing
                raise NotOurs(errno.EOPNOTSUPP, f"{path}: this file system does not allocate"
                              " the blocks of a file of zeros (compression?)")
        except OSError:
            os.ftruncate(descriptor, 0)
            _remove(path, inode)
            raise
        return inode
    finally:
        os.close(descriptor)


def _fill(descriptor: int, size: int) -> None:
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(descriptor, 0, size)
            return
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
    zeros = bytes(_CHUNK)  # macOS, or a file system without fallocate
    written = 0
    while written < size:
        written += os.write(descriptor, zeros[:min(_CHUNK, size - written)])


def _remove(path: Path, inode: tuple[int, int] | None) -> None:
    """Unlink `path` if it is still the regular file we held (`inode`): never what someone put
    in its place."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if inode is not None and stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == inode:
        path.unlink(missing_ok=True)
