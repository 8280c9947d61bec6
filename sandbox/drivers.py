"""The guest drivers of the two evaluation phases: compiled once per process by the guest, and
the exit codes and result line by which a phase tells the host how it ended."""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path
from typing import Any

from research_dag import parse_python
from sandbox.host import Limits, run_guest
from sandbox.runtime import Runtime, RuntimeUnavailable

GUEST_DIR = Path(__file__).parent / "guest"
MARKER = b"\x1eswarm-result "
EXIT_INVALID_OUTPUT = 3
# What only the driver returning from the turn can end with (sandbox/guest/prelude.py): WASI
# proc_exit, all that os._exit reaches, refuses codes >= 126 (wasmtime traps instead).
EXIT_DONE = 208
ENTRY_LINE = "raise SystemExit(_main(SWARM_CONFIG))"
DRIVER_LIMITS = Limits(fuel=10_000_000_000, memory_bytes=256 * 1024 * 1024, wall_s=60.0)


@functools.cache
def _compact(name: str) -> str:
    """A guest file without docstrings or comments: the guest compiles it on every run, and
    compiling costs fuel (~5M for the commented prelude, ~1M compact)."""
    tree = parse_python((GUEST_DIR / name).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body[0] = ast.Pass()
    return ast.unparse(tree)


def _compiled_driver(runtime: Runtime, phase: str) -> str:
    """The phase's driver (prelude + phase code) compiled once per process *by the guest*
    and marshalled: each run then loads bytecode instead of compiling ~60 lines, which
    saves ~7M fuel (~3 ms) per phase. Same runtime, same bytes, same fuel everywhere."""
    with runtime.drivers_lock:
        cached = runtime.compiled_drivers.get(phase)
        if cached is not None:
            return cached
        body = _compact(f"{phase}.py").replace(ENTRY_LINE, "")
        source = f"{_compact('prelude.py')}\n{body}"
        compiler = (
            "import marshal, sys\n"
            f"sys.stdout.write(marshal.dumps(compile({source!r}, '<swarm-{phase}>', 'exec')).hex())"
        )
        done = run_guest(runtime, compiler, [], DRIVER_LIMITS)
        blob = done.stdout.decode("ascii", errors="replace").strip()
        if done.exit_code != 0 or not blob or any(c not in "0123456789abcdef" for c in blob):
            raise RuntimeUnavailable(
                f"the sandbox could not compile its {phase} driver: "
                f"{done.trap or done.stderr_tail.decode(errors='replace')[-300:]}"
            )
        runtime.compiled_drivers[phase] = blob
        return blob


def guest_source(runtime: Runtime, phase: str, config: dict[str, Any]) -> str:
    """The code of one run of `phase` ("strategy_phase" or "evaluator_phase")."""
    blob = _compiled_driver(runtime, phase)
    return (
        "import json, marshal\n"
        f"SWARM_CONFIG = json.loads({json.dumps(config)!r})\n"
        f"exec(marshal.loads(bytes.fromhex('{blob}')))\n"
        f"{ENTRY_LINE}\n"
    )


def last_result(stdout: bytes) -> bytes | None:
    """The payload of the last result line, if any."""
    index = stdout.rfind(MARKER)
    if index < 0:
        return None
    line = stdout[index + len(MARKER) :]
    end = line.find(b"\n")
    return line if end < 0 else line[:end]

