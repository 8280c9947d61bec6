"""A host function never raises into wasmtime (sandbox/host.py `_guarded`): wasmtime-py keeps
the exception a host function raised in one process-wide slot until the failing call picks it
up, so a guest trapping meanwhile on another thread took it (an out-of-fuel run reported with
another run's error, that run with a bare host error). An exception in a host function is the
run's own host fault now, whatever the guest does after it."""

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
    assert done.trap == "host_fault: RuntimeError: a bug in the door"
    assert done.exit_code is None
    assert wasmtime._func.LAST_EXCEPTION is None  # nothing left for another thread to take
    # The next run on this thread starts clean.
    clean = run_guest(runtime, "print(1)", [], limits)
    assert (clean.trap, clean.exit_code, clean.stdout) == (None, 0, b"1\n")


def test_a_host_fault_is_no_verdict_on_the_strategy(runtime: Runtime) -> None:
    """The run's host error is a `timeout` outcome (the status of a run the host cut short:
    never deterministic, never verified), not the strategy's crash: a replay that hit it
    disputes nothing (tests/test_replay_rule.py), and no node records the strategy as
    crashing at that site."""
    from sandbox.run_outcomes import _failure

    limits = Limits(fuel=10**12, memory_bytes=128 << 20, wall_s=30.0)
    done = run_guest(runtime, CALL, [], limits, door=BrokenDoor())
    status, stderr = _failure(done, phase=1, memory_limit=limits.memory_bytes) or ("", "")
    assert status == "timeout"
    assert stderr.splitlines()[-1] == ("[sandbox] host fault, not the strategy's: host_fault: "
                                       "RuntimeError: a bug in the door")


def test_a_trap_raised_inside_a_host_function_is_the_guests() -> None:
    """A host function that calls back into the module (fd_filestat_get's trampoline, the
    door's allocator) runs guest code: its trap is the run's trap, never a host fault (a
    deadline inside fd_filestat_get made one os.urandom flood in twelve a host fault, not a
    timeout). Any other exception stays the host's."""
    import wasmtime

    from sandbox.host import _DISPATCH, _guarded

    def nested() -> int:
        raise wasmtime.Trap("the guest's code, called back, trapped")

    def broken() -> int:
        raise RuntimeError("a bug")

    try:
        assert _guarded(nested, 29)() == 29
        assert (_DISPATCH.trapped, _DISPATCH.failed) == ("trap", None)
        assert _guarded(broken, 29)() == 29
        assert isinstance(_DISPATCH.failed, RuntimeError)
    finally:
        _DISPATCH.trapped = _DISPATCH.failed = None


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


def test_a_trap_inside_the_doors_allocation_is_kept_for_the_run() -> None:
    """The guest's own allocator runs inside the model door; its trap (out of fuel, time or
    stack) is not raised through wasmtime-py's trampoline but handed to `trapped`, so the run
    ends with it even if the guest carries on (out of stack, it might)."""
    import wasmtime

    from sandbox.model_door import HOST_FAULT, serve_door

    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, """(module
      (import "host" "call" (func $call (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "host_alloc") (param i32) (result i32) unreachable)
      (func (export "run") (result i32) (call $call (i32.const 0) (i32.const 2)
                                                    (i32.const 16) (i32.const 20))))""")
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    trapped: list[object] = []

    class Door(BrokenDoor):
        def answer(self, frame: bytes, stopped: Callable[[], bool] = lambda: False) -> bytes:
            return b'{"text": "yes"}'

    def call(caller: wasmtime.Caller, ptr: int, length: int, out_ptr: int, out_len: int) -> int:
        return serve_door(Door(), caller, ptr, length, out_ptr, out_len, lambda: False,
                          trapped=trapped.append)

    i32 = wasmtime.ValType.i32()
    linker.define_func("host", "call", wasmtime.FuncType([i32] * 4, [i32]), call,
                       access_caller=True)
    run = linker.instantiate(store, module).exports(store)["run"]
    assert isinstance(run, wasmtime.Func)
    assert run(store) == HOST_FAULT  # the guest carried on
    assert len(trapped) == 1 and isinstance(trapped[0], wasmtime.Trap)
    assert trapped[0].trap_code == wasmtime.TrapCode.UNREACHABLE
    assert wasmtime._func.LAST_EXCEPTION is None
