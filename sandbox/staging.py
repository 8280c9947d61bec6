"""Writing the files a guest will see under a host directory, so that no name can leave it.

Names come from records a peer or a problem author wrote. The record schema refuses unsafe
ones already; staging checks again on its own (defence in depth, issue 8 finding 1): a name
is split into plain segments, every directory is entered by a descriptor opened with
O_NOFOLLOW relative to its parent, and every file is created with O_EXCL, so neither `..`,
an absolute path nor a symlink planted in the tree can redirect a write.
"""

from __future__ import annotations

import contextlib
import os

from research_dag import PathError, check_package_path

MAX_PATH_CHARS = 4096
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class StagingError(ValueError):
    """A name that cannot be staged inside its root; the message says why."""


def path_segments(path: object) -> list[str]:
    """The plain segments of a relative posix path, or StagingError.

    Checked here on its own terms first, so staging stays safe whatever the schema allows.
    Refused: non-strings, empty or huge paths, absolute paths, empty, `.` or `..` segments,
    backslashes (a separator on Windows), NUL and other control characters."""
    if not isinstance(path, str) or not 0 < len(path) <= MAX_PATH_CHARS:
        raise StagingError(f"{path!r:.80} is not a file name of 1..{MAX_PATH_CHARS} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F or char == "\\" for char in path):
        raise StagingError(f"{path!r:.80} contains a control character or a backslash")
    if path.startswith("/"):
        raise StagingError(f"{path!r:.80} is absolute")
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise StagingError(f"{path!r:.80} has an empty, '.' or '..' segment")
    try:  # the record schema's rules too: what a peer could not send, staging never writes
        check_package_path(path)
    except PathError as error:
        raise StagingError(str(error)) from None
    return segments


def stage_file(root: str | os.PathLike[str], path: str, content: bytes, mtime: int) -> None:
    """Create `root/path` holding `content` with a fixed mtime; StagingError if `path` is not a
    plain relative name, or anything on the way (a symlink, an existing file) is in the way."""
    segments = path_segments(path)
    try:
        directory = os.open(root, _DIRECTORY_FLAGS)
    except OSError as error:
        raise StagingError(f"cannot open the staging root: {error.strerror}") from None
    try:
        for name in segments[:-1]:
            # mkdir never follows a symlink at its last component; the open below refuses one.
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=directory)
            inner = os.open(name, _DIRECTORY_FLAGS, dir_fd=directory)
            os.close(directory)
            directory = inner
        target = os.open(segments[-1], _FILE_FLAGS, 0o600, dir_fd=directory)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(target, view) :]
            # Guests can read mtimes (the importer does), and the fuel they spend must not
            # depend on when a file was written.
            os.utime(target, (mtime, mtime))
        finally:
            os.close(target)
    except OSError as error:
        raise StagingError(f"cannot stage {path!r:.80}: {error.strerror}") from None
    finally:
        os.close(directory)
