"""Reading an experiment package's files from disk: regular files only, each read bounded.

A package directory is input from a stranger (a problem author, or an LLM writing for one). A
named pipe in it would block a read forever, a device such as /dev/zero would be read until
memory ran out, and a symbolic link would pull in a file from outside the package. So nothing
is opened by name and trusted: each file is opened without following links and without
blocking, checked to be a regular file on the open descriptor itself (no race with a swap
between a check and the open), and read up to a limit plus one byte, which is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Set as AbstractSet
from pathlib import Path

__all__ = ["UnreadableFile", "read_regular", "walk_package"]

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class UnreadableFile(ValueError):
    """A file that is not a regular file, is too large, or cannot be read; says which and why."""


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them; UnreadableFile else."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if os.path.islink(path):
            raise UnreadableFile(f"{path} is a symbolic link; give a regular file") from None
        raise UnreadableFile(f"cannot read {path}: {error.strerror or error}") from None
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
        mode = os.fstat(stream.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"{path} is {_kind(mode)}; only regular files can be read")
        data = bytearray()
        while len(data) <= limit:  # a read may return less than asked: loop to EOF or limit
            try:
                chunk = stream.read(limit + 1 - len(data))
            except OSError as error:
                raise UnreadableFile(f"cannot read {path}: {error.strerror or error}") from None
            if not chunk:
                break
            data += chunk
    if len(data) > limit:
        raise UnreadableFile(f"{path} is larger than the limit of {limit:,} bytes")
    return bytes(data)


def walk_package(root: Path, skip: AbstractSet[str]) -> tuple[list[Path], list[str]]:
    """Every regular file under `root` (relative, sorted) and a defect for everything else
    that is neither a regular file nor a directory. Never follows a link; `skip` names parts
    (and any dot-part) left out entirely."""
    files: list[Path] = []
    defects: list[str] = []
    pending = [Path()]
    while pending:  # iterative: a deep tree cannot exhaust the stack
        relative = pending.pop()
        try:
            entries = sorted(os.scandir(root / relative), key=lambda entry: entry.name)
        except OSError as error:
            defects.append(f"{relative.as_posix()}: cannot list: {error.strerror or error}")
            continue
        for entry in entries:
            name = relative / entry.name
            if entry.name in skip or entry.name.startswith("."):
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                pending.append(name)
            elif stat.S_ISREG(mode):
                files.append(name)
            else:
                defects.append(f"{name.as_posix()} is {_kind(mode)}; packages hold regular "
                               "files only")
    return sorted(files), defects
