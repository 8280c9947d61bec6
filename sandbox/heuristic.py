"""The harness phase of a heuristic package: the package's fixed harness drives the candidate's
function over instances drawn for that candidate, one fresh guest run per instance under a fuel
slice of its own, and nothing the runs print or return reaches a published record.

A package is a heuristic package when it has a fixed top-level `harness.py` and a generator
(docs/experiment-package.md#heuristic-packages). Phase 1 becomes: a count run (generator and
harness only, no strategy code) that returns each instance's weight, then one run per instance
whose fuel is the budget's share for that weight. The results, as one JSON list, go to the
evaluator phase exactly as a strategy's output does; the evaluator re-checks each of them.
"""

from __future__ import annotations

import builtins
import json
import math
import re
import time
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from research_dag import MAX_STDERR_TAIL, Outcome, Problem
from sandbox.drivers import EXIT_DONE, EXIT_INVALID_OUTPUT, guest_source, last_result
from sandbox.host import GuestRun, Limits, Mount, run_guest
from sandbox.runtime import Runtime
from sandbox.staging import stage_file

HARNESS = "harness.py"
HARNESS_MODULE = "harness"
MAX_INSTANCES = 64
STAGED_MTIME = 1_704_067_200  # the virtual clock's origin, as every staged file (evaluation.py)
MIN_SLICE = 20_000_000  # a run's own start-up (~12M) must fit in any slice
WITHHELD = "the harness phase's messages are withheld: they could quote the instances"
REJECTED = "the evaluator rejected the harness's results; its messages are withheld too"
# What of a failed instance run may be published: a builtin exception's name and the line of
# the strategy file it was raised in (a few bits), never its message or any printed text.
_EXCEPTIONS = frozenset(
    name for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)
_FRAME = re.compile(r'File "/strategy/([A-Za-z0-9_.-]{1,200})", line (\d{1,7})')
_LAST = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,60})(?::|$)")


def is_heuristic(problem: Problem) -> bool:
    """A fixed top-level harness.py and a generator make a heuristic package. The loader
    refuses a harness without a generator; a peer's record that has one without the other is
    evaluated, probed and shown as an ordinary package, the same on every node."""
    fixed = HARNESS in problem.files and HARNESS not in problem.mutable
    return fixed and problem.generator is not None


def error_summary(stderr: bytes, strategy: Mapping[str, str]) -> str:
    """The publishable part of a failed run's stderr: the builtin exception's name and the
    innermost line of a strategy file, each checked against what they can be."""
    text = stderr.decode("utf-8", errors="replace")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    kind = ""
    if lines:
        found = _LAST.match(lines[-1])
        if found is not None and found.group(1) in _EXCEPTIONS:
            kind = found.group(1)
    where = ""
    for path, line in _FRAME.findall(text):
        source = strategy.get(path)
        if source is not None and 0 < int(line) <= source.count("\n") + 1:
            where = f" at {path} line {int(line)}"
    return f"{kind or 'an error'}{where}"


class Harness:
    """The staged harness of one heuristic problem; runs phase 1 of each candidate."""

    def __init__(self, runtime: Runtime, problem: Problem, directory: Path) -> None:
        self.runtime = runtime
        self.problem = problem
        self.directory = directory
        self.modules = {HARNESS_MODULE: f"/harness/{HARNESS}"}

    @classmethod
    def staged(cls, runtime: Runtime, problem: Problem, root: Path) -> Harness | None:
        """Stage `problem`'s harness under `root`; None for a problem that is not heuristic."""
        if not is_heuristic(problem):
            return None
        directory = root / "harness"
        directory.mkdir(mode=0o700)
        stage_file(directory, HARNESS, problem.files[HARNESS], STAGED_MTIME)
        return cls(runtime, problem, directory)

    def run(
        self,
        strategy: Mapping[str, str],
        mounts: list[Mount],
        config: dict[str, Any],
        limits: Limits,
    ) -> Outcome | tuple[GuestRun, bytes]:
        """Phase 1: the count run, then one run per instance. `mounts` and `config` are the
        strategy phase's own (strategy, public data, generator). Returns the combined run
        (fuel summed, nothing printed kept) and the results as one JSON list, or the outcome
        that ends the evaluation here."""
        started = time.monotonic()
        config = {
            **config,
            "files": {**config["files"], **self.modules},
            "harness": HARNESS_MODULE,
            "max_instances": MAX_INSTANCES,
        }
        mounts = [*mounts, Mount(self.directory, "/harness")]
        weights = self._count(config, mounts, limits)
        if isinstance(weights, Outcome):
            return weights
        results: list[bytes] = []
        used, memory, size = 0, 0, 2
        for index, share in enumerate(fuel_slices(limits.fuel, weights)):
            left = limits.fuel - used
            # The phase's wall time is shared, as for any strategy: each run once had at least
            # 1 s, so 64 instances could outlive `wall_s` by a minute.
            wall = limits.wall_s - (time.monotonic() - started)
            if wall <= 0:
                return _withheld("timeout", used, index, len(weights), "timeout")
            sliced = Limits(min(share, left), limits.memory_bytes, wall, limits.stdout_bytes)
            run = run_guest(
                self.runtime,
                guest_source(self.runtime, "harness_phase", {**config, "instance": index}),
                mounts,
                sliced,
                seed=self.problem.seed,
            )
            failed = self._failed(run, index, len(weights), sliced, strategy)
            if failed is not None:
                return failed.model_copy(update={"strategy_fuel": used + failed.strategy_fuel})
            used += run.fuel_used
            memory = max(memory, run.memory_bytes)
            result = last_result(run.stdout)
            size += 0 if result is None else len(result) + 1
            if result is None or run.stdout_overflow or size > limits.stdout_bytes - 1024:
                why = "no result" if result is None else "results too large in total"
                return _withheld("invalid_output", used, index, len(weights), why)
            results.append(result)
        combined = b"[" + b",".join(results) + b"]"
        return GuestRun(EXIT_DONE, None, used, b"", False, b"", memory), combined

    def _count(
        self, config: dict[str, Any], mounts: list[Mount], limits: Limits
    ) -> list[float] | Outcome:
        """The instances' weights, from package code alone (its messages may be shown)."""
        count_mounts = [m for m in mounts if m.guest_path != "/strategy"]
        run = run_guest(
            self.runtime,
            guest_source(self.runtime, "harness_phase", {**config, "instance": None}),
            count_mounts,
            limits,
            seed=self.problem.seed,
        )
        tail = run.stderr_tail.decode("utf-8", errors="replace")[-MAX_STDERR_TAIL // 2 :]
        weights = _weights(last_result(run.stdout)) if run.exit_code == EXIT_DONE else None
        if run.trap == "timeout":
            # Not the package's verdict: a loaded verifier whose count run timed out reported
            # `invalid` and disputed an honest claim. A timeout is never reproducible.
            return Outcome(status="timeout", details={"failed_phase": 1}, stderr_tail=(
                "[sandbox] the count run (generator and harness) timed out"))
        if weights is None:
            why = run.trap or f"exit code {run.exit_code}"
            return Outcome(
                status="invalid",
                stderr_tail=(
                    f"{tail}\n[sandbox] the package's generator or harness failed to draw or "
                    f"weigh the instances ({why}): weights must be 1 to {MAX_INSTANCES} "
                    "non-negative finite numbers, not all 0"
                ).strip()[-MAX_STDERR_TAIL:],
                details={"failed_phase": 1},
            )
        return weights

    def _failed(
        self,
        run: GuestRun,
        index: int,
        count: int,
        limits: Limits,
        strategy: Mapping[str, str],
    ) -> Outcome | None:
        if run.trap is None and run.exit_code == EXIT_DONE:
            return None
        fuel = 0 if run.trap == "timeout" else run.fuel_used
        if run.trap == "out_of_fuel":
            return _withheld("out_of_fuel", fuel, index, count, (
                f"the run used up its fuel slice ({limits.fuel:,} of the budget): one call of "
                "the function, or the whole instance, took too long"), limits.fuel)
        if run.trap in ("timeout", "out_of_memory"):
            return _withheld(run.trap, fuel, index, count, run.trap.replace("_", " "))
        if run.trap is not None:  # a stack overflow or another trap: the guest is gone
            return _withheld("crash", fuel, index, count, f"trap: {run.trap}")
        status = "invalid_output" if run.exit_code == EXIT_INVALID_OUTPUT else "crash"
        stderr = run.stderr_tail.decode(errors="replace")
        if "MemoryError" in stderr:
            status = "out_of_memory"
        # The driver's own messages are fixed sentences: naming one publishes a bit or two.
        known = (f"the strategy defines no callable {self.problem.entry!r}",
                 "the harness's result is not JSON-serialisable", "no result: the strategy exited")
        said = next((message for message in known if message in stderr), None)
        why = said or error_summary(run.stderr_tail, strategy)
        return _withheld(status, fuel, index, count, why)

    def withhold(self, outcome: Outcome) -> Outcome:
        """The evaluator phase's outcome as published: its messages dropped (an evaluator may
        quote what it rejected) and only numeric details kept."""
        details = {
            key: value for key, value in outcome.details.items() if not isinstance(value, str)
        }
        stderr = "" if outcome.status in ("ok", "invalid") else f"[sandbox] {REJECTED}"
        return outcome.model_copy(update={"stderr_tail": stderr, "details": details})


def fuel_slices(fuel: int, weights: list[float]) -> list[int]:
    """Each instance's fuel: its weight's share of `fuel` (rounded down), at least MIN_SLICE.
    The weights are the package's numbers (finite, non-negative, not all 0) and may be as
    large as 1e308, so the shares are computed exactly, in fractions: in floats, `fuel * 1e308
    / inf` raised in the host on a package's harness and stopped the node evaluating it."""
    total = sum(Fraction(weight) for weight in weights)
    return [max(MIN_SLICE, min(fuel, math.floor(fuel * Fraction(weight) / total)))
            for weight in weights]


def _withheld(
    status: str, fuel: int, index: int, count: int, why: str, slice_fuel: int = 0
) -> Outcome:
    details: dict[str, int] = {"failed_phase": 1, "failed_instance": index, "instances": count}
    if slice_fuel:
        details["instance_fuel"] = slice_fuel
    return Outcome.model_validate({
        "status": status,
        "strategy_fuel": fuel,
        "stderr_tail": f"[sandbox] instance {index + 1} of {count}: {why}; {WITHHELD}"[
            -MAX_STDERR_TAIL:
        ],
        "details": details,
    })


def _weights(result: bytes | None) -> list[float] | None:
    if result is None:
        return None
    try:
        raw = json.loads(result)
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_INSTANCES:
        return None
    weights: list[float] = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        try:  # a JSON int has no bound: 10**400 raised OverflowError out of the evaluation
            weight = float(value)
        except OverflowError:
            return None
        if not math.isfinite(weight) or weight < 0:
            return None
        weights.append(weight)
    return weights if sum(weights) > 0 else None
