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


@contextmanager
def quiet_warnings(category: type[Warning] = Warning) -> Iterator[None]:
    """`warnings.catch_warnings()` with `category` ignored, one thread at a time."""
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", category)
        yield


def parse_python(source: str | bytes, filename: str = "<unknown>", quiet: bool = False
                 ) -> ast.Module:
    """`ast.parse(source, filename)`, one conversion at a time in this process (`quiet`: the
    source's own warnings, such as invalid escapes, ignored); raises what ast.parse raises
    (SyntaxError, ValueError, RecursionError, MemoryError)."""
    with _LOCK:
        if not quiet:
            return ast.parse(source, filename=filename)
        with quiet_warnings():
            return ast.parse(source, filename=filename)


__all__ = ["parse_python", "quiet_warnings"]
