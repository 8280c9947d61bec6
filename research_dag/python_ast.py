"""Process-wide interpreter state that worker threads must not touch at once: the AST converter
and the warnings filters. A node parses and silences warnings in several threads (history
loading, evaluations, the curator's derivation, proposals in the trio thread); both go through
the one lock here.

- CPython 3.11 keeps the AST converter's recursion depth in interpreter-wide state. Two threads
  converting at once corrupt it whenever the conversion runs Python code (a garbage collection
  that calls a finalizer does), and the converter then raises `SystemError: AST constructor
  recursion depth mismatch` on a source that parses (python/cpython#106905). A 16-node
  simulation died of it at round 40.
- `warnings.catch_warnings` swaps the process's filter list on entry and puts back what it saw on
  exit: two threads inside at once end with one thread's "ignore" restored for good, or with
  the other's silenced warning raised as an error while it still runs (under `-W error` a
  SyntaxWarning in a hostile strategy then made it "unparseable" in one run and not another).
  There are no per-thread filters in 3.11: `quiet_warnings` ignores only the categories it is
  given, for one call, and another thread's warnings of those categories are ignored
  meanwhile too.

tests/test_python_ast.py reproduces the converter's race and checks that no other module calls
`ast.parse` or `warnings.catch_warnings` itself.
"""

from __future__ import annotations

import ast
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()


# What parsing a source can warn of (an invalid escape sequence: DeprecationWarning in 3.11,
# SyntaxWarning from 3.12, with the strategy's own character in the message).
SOURCE_WARNINGS: tuple[type[Warning], ...] = (SyntaxWarning, DeprecationWarning)


@contextmanager
def quiet_warnings(*categories: type[Warning]) -> Iterator[None]:
    """`warnings.catch_warnings()` with `categories` ignored, one thread at a time. The filters
    are the process's: another thread's warning of these categories is ignored meanwhile too,
    so callers name the narrowest categories and hold this briefly."""
    with _LOCK, warnings.catch_warnings():
        for category in categories:
            warnings.simplefilter("ignore", category)
        yield


def parse_python(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse(source, filename)`, one conversion at a time in this process, the source's
    own warnings (SOURCE_WARNINGS) ignored: every source parsed here is a stranger's or a
    model's, and from Python 3.12 an invalid escape's SyntaxWarning prints the source's own
    character to the terminal. Raises what ast.parse raises (SyntaxError, ValueError,
    RecursionError, MemoryError)."""
    with quiet_warnings(*SOURCE_WARNINGS):
        return ast.parse(source, filename=filename)


__all__ = ["parse_python", "quiet_warnings"]
