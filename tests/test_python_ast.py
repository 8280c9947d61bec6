"""The host's Python parser under threads (research_dag/python_ast.py): CPython 3.11's AST
converter keeps its recursion depth in interpreter-wide state, so two threads converting at
once, while a collection runs a finalizer, raise SystemError on a source that parses. A 16-node
simulation died of it; every parse goes through one locked door."""

from __future__ import annotations

import ast
import functools
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from research_dag import parse_python, quiet_warnings

ROOT = Path(__file__).resolve().parent.parent
SOURCE = (ROOT / "examples" / "finance_factors" / "strategy.py").read_text() * 5


class _Cyclic:
    """Garbage only a collection frees, whose finalizer runs Python code: what lets another
    thread in while one thread is inside the converter."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        total = 0
        for step in range(50):
            total += step


def _in_threads(work: Callable[[], None], threads: int) -> None:
    """`work` on `threads` threads at once, switching as often as the interpreter allows."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(previous)


def _race(parse: object, threads: int = 4, parses: int = 150) -> list[BaseException]:
    errors: list[BaseException] = []

    def work() -> None:
        for _ in range(parses):
            for _ in range(50):
                _Cyclic()
            try:
                parse(SOURCE)  # type: ignore[operator]
            except SystemError as error:
                errors.append(error)
                return

    _in_threads(work, threads)
    return errors


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="the converter's state is per call there")
def test_concurrent_parses_through_the_door_never_raise_system_error() -> None:
    assert _race(parse_python) == []


def test_no_module_parses_python_or_swaps_warning_filters_but_the_door() -> None:
    """The class, not the one call site: `ast.parse`, `ast.literal_eval`, `compile(...,
    ast.PyCF_ONLY_AST)` and `warnings.catch_warnings` appear only in
    research_dag/python_ast.py."""
    door = ROOT / "research_dag" / "python_ast.py"
    found = []
    for package in ("node", "playbook", "research_dag", "sandbox"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == door:
                continue
            for node in ast.walk(parse_python(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
                if (owner == "ast" and name in ("parse", "literal_eval")) or (
                    owner == "warnings" and name in ("catch_warnings", "simplefilter",
                                                     "filterwarnings", "resetwarnings")
                ) or (
                    name == "compile" and any("PyCF" in ast.unparse(arg) for arg in node.args)
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _swaps(quiet: object, threads: int = 4, entries: int = 1000) -> list[object]:
    """Every thread silences warnings over and over; the filters each saw inside, if not its
    own "ignore" (another thread's exit put back the list from before it entered)."""
    seen: list[object] = []

    def work() -> None:
        for _ in range(entries):
            with quiet():  # type: ignore[operator]
                for _ in range(200):  # Python code: other threads get in here
                    if not warnings.filters or warnings.filters[0][0] != "ignore":
                        seen.append(warnings.filters[:1])
                        return

    _in_threads(work, threads)
    return seen


def test_threads_silencing_warnings_neither_lose_their_silence_nor_leave_it_behind() -> None:
    before = list(warnings.filters)
    assert _swaps(functools.partial(quiet_warnings, UserWarning)) == []
    assert warnings.filters == before
