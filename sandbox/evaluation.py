"""Two-phase evaluation of one candidate strategy: strategy and evaluator never share an
interpreter, the host measures the strategy's fuel, and only the evaluator's phase scores."""

from __future__ import annotations

import ast
import functools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from research_dag import MAX_NAME, MAX_STDERR_TAIL, Outcome, Problem, Status
from sandbox.host import GuestRun, Limits, Mount, run_guest
from sandbox.runtime import Runtime, RuntimeUnavailable

GUEST_DIR = Path(__file__).parent / "guest"
MARKER = b"\x1eswarm-result "
EXIT_INVALID_OUTPUT = 3
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
MAX_ITEMS = 64
MAX_DETAILS = 32
STAGED_MTIME = 1_704_067_200  # 2024-01-01, the virtual clock's origin
SHIFTED_SEED = 0x5EED_5EED
SHIFTED_CLOCK_NS = 366 * 86_400 * 1_000_000_000


class EvaluatorReport(BaseModel):
    """What evaluate.py must return; anything else is an invalid report."""

    model_config = ConfigDict(extra="ignore")
    score: float
    items: dict[str, bool] = Field(default_factory=dict, max_length=MAX_ITEMS)
    details: dict[str, float | int | bool | str] = Field(default_factory=dict)
    valid: bool = True

    @field_validator("score", mode="before")
    @classmethod
    def _real_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("score must be a number")
        return value


@functools.cache
def _compact(name: str) -> str:
    """A guest file without docstrings or comments: the guest compiles it on every run, and
    compiling costs fuel (~5M for the commented prelude, ~1M compact)."""
    tree = ast.parse((GUEST_DIR / name).read_text())
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


ENTRY_LINE = "raise SystemExit(_main(SWARM_CONFIG))"
DRIVER_LIMITS = Limits(fuel=10_000_000_000, memory_bytes=256 * 1024 * 1024, wall_s=60.0)


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


def _guest_source(runtime: Runtime, phase: str, config: dict[str, Any]) -> str:
    blob = _compiled_driver(runtime, phase)
    return (
        "import json, marshal\n"
        f"SWARM_CONFIG = json.loads({json.dumps(config)!r})\n"
        f"exec(marshal.loads(bytes.fromhex('{blob}')))\n"
        f"{ENTRY_LINE}\n"
    )


def _module_name(path: str) -> str:
    return path[: -len(".py")].replace("/", ".")


def _tail(data: bytes, limit: int = MAX_STDERR_TAIL) -> str:
    text = data.decode("utf-8", errors="replace")
    return text[-limit:]


def _last_result(stdout: bytes) -> bytes | None:
    index = stdout.rfind(MARKER)
    if index < 0:
        return None
    line = stdout[index + len(MARKER) :]
    end = line.find(b"\n")
    return line if end < 0 else line[:end]


def _out_of_memory(run: GuestRun, stderr: str, memory_limit: int) -> bool:
    """Python reports a failed allocation as MemoryError; when memory is exhausted it may not
    even manage to print that cleanly, so a failure near the limit counts too."""
    lines = stderr.strip().splitlines()
    if lines and lines[-1].startswith("MemoryError"):
        return True
    return "MemoryError" in stderr and run.memory_bytes >= memory_limit * 0.9


def _failure(run: GuestRun, phase: int, memory_limit: int) -> tuple[Status, str] | None:
    """The status of a run that did not finish normally, or None when it did."""
    stderr = _tail(run.stderr_tail)
    if run.trap == "out_of_fuel":
        return "out_of_fuel", stderr
    if run.trap == "timeout":
        return "timeout", stderr
    if run.trap == "out_of_memory":
        return "out_of_memory", stderr
    if run.trap is not None:
        note = "stack overflow (recursion too deep)" if run.trap == "stack_overflow" else run.trap
        return "crash", (stderr + f"\n[sandbox] trap: {note}").strip()
    if run.exit_code == 0:
        return None
    if _out_of_memory(run, stderr, memory_limit):
        return "out_of_memory", stderr
    if run.exit_code == EXIT_INVALID_OUTPUT:
        return "invalid_output", stderr
    # Phase 2 raising means the evaluator rejected what the strategy produced.
    status: Status = "crash" if phase == 1 else "invalid_output"
    return status, (stderr + f"\n[sandbox] exit code {run.exit_code}").strip()


def _stage(path: Path, content: bytes) -> None:
    """Write a file the guest will see, with a fixed timestamp: guests can read mtimes (the
    importer does), and the fuel they spend must not depend on when a file was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (STAGED_MTIME, STAGED_MTIME))


class Evaluator:
    """Scores candidate strategies of one problem; stages its fixed files once."""

    def __init__(
        self,
        runtime: Runtime,
        problem: Problem,
        workdir: Path | None = None,
        *,
        shifted_world: int = 0,
    ) -> None:
        """`shifted_world=n > 0` runs the evaluator phase with other ambient randomness and a
        clock n years later: a sound evaluator scores the same there (`node.validate`)."""
        self.runtime = runtime
        self.problem = problem
        self._evaluator_seed = problem.seed + 1 + SHIFTED_SEED * shifted_world
        self._evaluator_clock_ns = SHIFTED_CLOCK_NS * shifted_world
        self._root = Path(tempfile.mkdtemp(prefix="swarm-eval-", dir=workdir))
        self._public = self._root / "public"
        self._private = self._root / "private"
        self._evaluator = self._root / "evaluator"
        self._evaluator_modules: dict[str, str] = {}
        for directory in (self._public, self._private, self._evaluator):
            directory.mkdir(mode=0o700)
        mutable = set(problem.mutable)
        for path, content in problem.files.items():
            if path.startswith("data/public/"):
                target = self._public / path.removeprefix("data/public/")
            elif path.startswith("data/private/"):
                target = self._private / path.removeprefix("data/private/")
            elif path in mutable or path == "problem.toml" or path.startswith("data/"):
                continue
            else:
                target = self._evaluator / path
                if path.endswith(".py"):
                    self._evaluator_modules[_module_name(path)] = f"/evaluator/{path}"
            _stage(target, content)

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _limits(self) -> Limits:
        budget = self.problem.budget
        return Limits(
            fuel=budget.fuel,
            memory_bytes=budget.memory_mb * 1024 * 1024,
            wall_s=budget.wall_s,
            stdout_bytes=MAX_OUTPUT_BYTES + 1024,
        )

    def evaluate(self, strategy: Mapping[str, str]) -> Outcome:
        """One evaluation. Never raises for anything the strategy or evaluator does."""
        # A fresh directory per run: one Evaluator may serve several threads at once.
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self._root))
        strategy_dir, output_dir = run_dir / "strategy", run_dir / "output"
        strategy_dir.mkdir(mode=0o700)
        output_dir.mkdir(mode=0o700)
        try:
            return self._evaluate(strategy, strategy_dir, output_dir)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _evaluate(
        self, strategy: Mapping[str, str], strategy_dir: Path, output_dir: Path
    ) -> Outcome:
        problem = self.problem
        modules: dict[str, str] = {}
        for path, source in strategy.items():
            target = strategy_dir / path
            _stage(target, source.encode("utf-8"))
            if path.endswith(".py"):
                modules[_module_name(path)] = f"/strategy/{path}"
        entry_module = _module_name(problem.mutable[0])
        config = {
            "files": modules,
            "module": entry_module,
            "entry": problem.entry,
            "public_dir": "/data/public",
        }
        limits = self._limits()
        public = Mount(self._public, "/data/public")
        first = run_guest(
            self.runtime,
            _guest_source(self.runtime, "strategy_phase", config),
            [Mount(strategy_dir, "/strategy"), public],
            limits,
            seed=problem.seed,
        )
        failed = _failure(first, phase=1, memory_limit=limits.memory_bytes)
        if failed is not None:
            status, stderr = failed
            fuel = first.fuel_used if status != "timeout" else 0
            return Outcome(
                status=status,
                strategy_fuel=fuel,
                stderr_tail=stderr[-MAX_STDERR_TAIL:],
                details={"failed_phase": 1},
            )
        result = _last_result(first.stdout)
        stderr = _tail(first.stderr_tail)
        if first.stdout_overflow or result is None or len(result) > MAX_OUTPUT_BYTES:
            why = (
                f"the strategy's output exceeds {MAX_OUTPUT_BYTES} bytes"
                if first.stdout_overflow or (result is not None)
                else "the strategy produced no result"
            )
            return Outcome(
                status="invalid_output",
                strategy_fuel=first.fuel_used,
                stderr_tail=(stderr + f"\n[sandbox] {why}").strip()[-MAX_STDERR_TAIL:],
                details={"failed_phase": 1},
            )
        _stage(output_dir / "output.json", result)
        second = run_guest(
            self.runtime,
            _guest_source(
                self.runtime,
                "evaluator_phase",
                {
                    "files": self._evaluator_modules,
                    "module": "evaluate",
                    "output_path": "/output/output.json",
                    "public_dir": "/data/public",
                    "private_dir": "/data/private",
                },
            ),
            [
                Mount(self._evaluator, "/evaluator"),
                public,
                Mount(self._private, "/data/private"),
                Mount(output_dir, "/output"),
            ],
            limits,
            seed=self._evaluator_seed,
            clock_start_ns=self._evaluator_clock_ns,
        )
        return self._score(first, second, stderr)

    def _score(self, first: GuestRun, second: GuestRun, strategy_stderr: str) -> Outcome:
        fuel = first.fuel_used
        failed = _failure(second, phase=2, memory_limit=self._limits().memory_bytes)
        if failed is not None:
            status, stderr = failed
            return Outcome(
                status=status,
                strategy_fuel=fuel,
                evaluator_fuel=second.fuel_used,
                stderr_tail=stderr[-MAX_STDERR_TAIL:],
                details={"failed_phase": 2},
            )
        report_bytes = _last_result(second.stdout)
        report, why = _parse_report(report_bytes)
        if report is None:
            return Outcome(
                status="invalid_output",
                strategy_fuel=fuel,
                evaluator_fuel=second.fuel_used,
                stderr_tail=f"[sandbox] {why}",
                details={"failed_phase": 2},
            )
        details = _bounded_details(report.details)
        items = {name[:MAX_NAME]: ok for name, ok in list(report.items.items())[:MAX_ITEMS]}
        if not report.valid:
            return Outcome(
                status="invalid",
                strategy_fuel=fuel,
                evaluator_fuel=second.fuel_used,
                items=items,
                details=details,
                stderr_tail=strategy_stderr[-MAX_STDERR_TAIL:],
            )
        score = float(fuel) if self.problem.metric.source == "fuel" else report.score
        return Outcome(
            status="ok",
            score=score,
            items=items,
            strategy_fuel=fuel,
            evaluator_fuel=second.fuel_used,
            details=details,
            stderr_tail=strategy_stderr[-MAX_STDERR_TAIL:],
        )


def _parse_report(data: bytes | None) -> tuple[EvaluatorReport | None, str]:
    if data is None:
        return None, "the evaluator printed no report"
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):
        return None, "the evaluator's report is not JSON"
    if not isinstance(raw, dict):
        return None, "the evaluator's report is not an object"
    try:
        report = EvaluatorReport.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return None, f"the evaluator's report is invalid: {where}: {first.get('msg')}"
    if not math.isfinite(report.score):
        return None, f"the evaluator reported a non-finite score ({report.score})"
    return report, ""


def _bounded_details(details: Mapping[str, float | int | bool | str]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in list(details.items())[:MAX_DETAILS]:
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, str):
            value = value[:MAX_NAME]
        kept[key[:MAX_NAME]] = value
    return kept
