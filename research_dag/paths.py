"""The schema of every path a record carries: the one validator that says which names a package
file, a mutable file or a strategy key may have, shared by the records, intake and staging."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, TypeAlias

from pydantic import AfterValidator

MAX_PATH = 200  # characters of a whole path
MAX_SEGMENT = 100  # characters of one segment
MAX_PATH_DEPTH = 8  # segments of a path (data/public/a/b/c/file.csv is 6)

# One segment: starts with a letter, digit or underscore (never `.`: no `.`, `..`, hidden
# files; never `-`: no option-like names), ends with one too or `-` (Windows drops trailing
# dots, so `a.` and `a` would be one file there), ASCII only (no Unicode normalisation or
# look-alike questions), so no `/`, `\`, `:`, NUL, controls or spaces.
_SEGMENT = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?")
# Device names Windows resolves in every directory, whatever the extension (`nul.txt`).
_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{n}" for n in range(10)]
    + [f"lpt{n}" for n in range(10)]
)


class PathError(ValueError):
    """A path (or a set of paths) the package path schema refuses; the message says why."""


def check_package_path(path: object) -> str:
    """`path` if it is a safe relative package path, else PathError.

    Safe means: joined under any directory on Linux, macOS or Windows it names a file inside
    that directory, and no other path that passes names the same file unless equal up to case
    (see `check_path_set`). The rules are in docs/protocol.md, section 5 ("Paths").
    """
    if not isinstance(path, str):
        raise PathError(f"a path must be a string, not {type(path).__name__}")
    if not 1 <= len(path) <= MAX_PATH:
        raise PathError(f"a path has 1..{MAX_PATH} characters, not {len(path)}")
    segments = path.split("/")
    if len(segments) > MAX_PATH_DEPTH:
        raise PathError(f"path {path!r:.80} has {len(segments)} segments; at most {MAX_PATH_DEPTH}")
    for segment in segments:
        if len(segment) > MAX_SEGMENT or _SEGMENT.fullmatch(segment) is None:
            raise PathError(
                f"path {path!r:.80}: segment {segment!r:.40} is not a plain name (letters,"
                " digits, '_', '-', '.'; not starting with '.' or '-', not ending with '.';"
                f" at most {MAX_SEGMENT} characters): paths are relative, '/'-separated,"
                " without '', '.' or '..' segments"
            )
        if segment.split(".", 1)[0].lower() in _RESERVED:
            raise PathError(f"path {path!r:.80}: {segment!r} is a reserved device name")
    return path


def check_mutable_path(path: object) -> str:
    """`path` if it names a file at the top of a package (what `mutable` and strategy keys
    name), else PathError."""
    checked = check_package_path(path)
    if "/" in checked:
        raise PathError(f"mutable file {checked!r:.80} must be at the top of the package")
    return checked


def check_path_set(paths: Iterable[str]) -> None:
    """PathError if staging these (each already valid) paths into one directory could not give
    one file per path: two differing only in case (one file on macOS and Windows), or one
    path used both as a file and as a directory (`data` and `data/x.csv`)."""
    folded: dict[str, str] = {}
    for path in paths:
        key = path.lower()
        if key in folded:
            raise PathError(f"paths {folded[key]!r:.80} and {path!r:.80} differ only in case")
        folded[key] = path
    for key, path in folded.items():
        segments = key.split("/")
        for depth in range(1, len(segments)):
            prefix = "/".join(segments[:depth])
            if prefix in folded:
                raise PathError(f"{folded[prefix]!r:.80} is a file and a directory of {path!r:.80}")


# Field types: a record field of these types validates its value with the function above.
PackagePath: TypeAlias = Annotated[str, AfterValidator(check_package_path)]
MutablePath: TypeAlias = Annotated[str, AfterValidator(check_mutable_path)]
