"""The one door by which this process turns Python source into an AST: `ast.parse` behind a lock.

CPython 3.11 keeps the AST converter's recursion depth in interpreter-wide state. Two threads
converting at once corrupt it whenever the conversion runs Python code (a garbage collection
that calls a finalizer does), and the converter then raises `SystemError: AST constructor
recursion depth mismatch` on a source that parses (python/cpython#106905). A node parses in
several worker threads (history loading, evaluations, the curator): a 16-node simulation died
of it at round 40. tests/test_python_ast.py reproduces the race and checks that no other module
calls `ast.parse` itself.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse_python(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse(source, filename)`, one conversion at a time in this process; raises what
    ast.parse raises (SyntaxError, ValueError, RecursionError, MemoryError)."""
    with _LOCK:
        return ast.parse(source, filename=filename)


__all__ = ["parse_python"]
