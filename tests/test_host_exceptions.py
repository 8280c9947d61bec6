"""A host function never raises into wasmtime (sandbox/host.py `_guarded`): wasmtime-py keeps
the exception a host function raised in one process-wide slot until the failing call picks it
up, so a guest trapping meanwhile on another thread took it (an out-of-fuel run reported with
another run's error, that run with a bare host error). An exception in a host function is the
run's own host error now, whatever the guest does after it."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

import wasmtime._func

from research_dag import parse_python
from sandbox import DoorFailure, Limits, Runtime, run_guest

ROOT = Path(__file__).resolve().parent.parent
CALL = """import _host
try:
    _host.call(b'{"kind": "judge", "question": "q", "output": "o"}')
except BaseException as error:
    print("guest saw", type(error).__name__)
print("guest went on")
"""


class BrokenDoor:
    """A door with a bug: its answer raises."""

    def answer(self, frame: bytes, stopped: Callable[[], bool] = lambda: False) -> bytes:
        raise RuntimeError("a bug in the door")

    def oversized(self, length: int) -> bytes:
        return json.dumps({"error": "limit", "message": "too long"}).encode()

    @property
    def failure(self) -> DoorFailure | None:
        return None


def test_a_host_function_that_raises_is_the_runs_host_error_not_wasmtimes(runtime: Runtime
                                                                          ) -> None:
    limits = Limits(fuel=10**12, memory_bytes=128 << 20, wall_s=30.0)
    done = run_guest(runtime, CALL, [], limits, door=BrokenDoor())
    assert done.trap == "host_error: RuntimeError: a bug in the door"
    assert done.exit_code is None
    assert wasmtime._func.LAST_EXCEPTION is None  # nothing left for another thread to take
    # The next run on this thread starts clean.
    clean = run_guest(runtime, "print(1)", [], limits)
    assert (clean.trap, clean.exit_code, clean.stdout) == (None, 0, b"1\n")


def test_every_host_function_is_defined_guarded() -> None:
    """The class: each `define_func` in sandbox/ passes `_guarded(...)` (or goes through
    `_define`, which does)."""
    unguarded = []
    for path in sorted((ROOT / "sandbox").rglob("*.py")):
        for node in ast.walk(parse_python(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "define_func"):
                func = node.args[3] if len(node.args) > 3 else None
                if not (isinstance(func, ast.Call) and isinstance(func.func, ast.Name)
                        and func.func.id == "_guarded"):
                    unguarded.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert unguarded == []
