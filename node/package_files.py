"""Reading an experiment package's files from disk: regular files only, each read bounded.

A package directory is input from a stranger (a problem author, or an LLM writing for one). A
named pipe in it would block a read forever, a device such as /dev/zero would be read until
memory ran out, and a symbolic link would pull in a file from outside the package. So nothing
is opened by name and trusted: each file is opened without following links and without
blocking, checked to be a regular file on the open descriptor itself (no race with a swap
between a check and the open), and read up to a limit plus one byte, which is refused.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Set as AbstractSet
from pathlib import Path

__all__ = [
    "MAX_DEFECTS",
    "MAX_ENTRIES",
    "FileTooLarge",
    "UnreadableFile",
    "read_regular",
    "walk_package",
]

MAX_ENTRIES = 3 * 4096  # directory entries a walk looks at: files, directories, anything
MAX_DEFECTS = 32  # stray entries (pipes, links, devices) listed one by one

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


class FileTooLarge(UnreadableFile):
    """A regular file longer than the limit it was read with."""


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
    try:  # on the descriptor: a file object refuses a directory with IsADirectoryError
        mode = os.fstat(descriptor).st_mode
    except OSError as error:
        os.close(descriptor)
        raise UnreadableFile(f"cannot read {path}: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise UnreadableFile(f"{path} is {_kind(mode)}; only regular files can be read")
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
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
        raise FileTooLarge(f"{path} is larger than the limit of {limit:,} bytes")
    return bytes(data)


def walk_package(root: Path, skip: AbstractSet[str]) -> tuple[list[Path], list[str]]:
    """Every regular file under `root` (relative, sorted) and a defect for everything else
    that is neither a regular file nor a directory. Never follows a link; `skip` names parts
    (and any dot-part) left out entirely.

    Bounded: it looks at MAX_ENTRIES directory entries at most (a package holds 4,096 files;
    200,000 empty files took 2.6 s and 270 MB before the loader refused them) and lists
    MAX_DEFECTS defects at most (3,000 named pipes printed 3,000 lines)."""
    files: list[Path] = []
    defects: list[str] = []
    strays = 0
    seen = 0
    pending = [Path()]
    while pending:  # iterative: a deep tree cannot exhaust the stack
        relative = pending.pop()
        try:
            with os.scandir(root / relative) as listing:
                entries = list(itertools.islice(listing, MAX_ENTRIES - seen + 1))
        except OSError as error:
            defects.append(f"{relative.as_posix()}: cannot list: {error.strerror or error}")
            continue
        seen += len(entries)
        if seen > MAX_ENTRIES:
            defects.append(f"more than {MAX_ENTRIES:,} files and directories; a package holds"
                           " a few thousand files at most (bundle data into fewer files)")
            break
        for entry in sorted(entries, key=lambda entry: entry.name):
            name = relative / entry.name
            if entry.name in skip or entry.name.startswith("."):
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as error:  # removed or replaced while we looked
                defects.append(f"{name.as_posix()}: cannot stat: {error.strerror or error}")
                continue
            if stat.S_ISDIR(mode):
                pending.append(name)
            elif stat.S_ISREG(mode):
                files.append(name)
            else:
                strays += 1
                if strays <= MAX_DEFECTS:
                    defects.append(f"{name.as_posix()} is {_kind(mode)}; packages hold regular "
                                   "files only")
    if strays > MAX_DEFECTS:
        defects.append(f"{strays - MAX_DEFECTS:,} more entries that are not regular files")
    return sorted(files), defects
