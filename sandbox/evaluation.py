"""Two-phase evaluation of one candidate strategy: strategy and evaluator never share an
interpreter, the host measures the strategy's fuel, and only the evaluator's phase scores. What
each phase's run comes to is sandbox/run_outcomes.py's."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from research_dag import MAX_NAME, MAX_STDERR_TAIL, Outcome, Problem, canonical_encode
from sandbox.drivers import GUEST_DIR as GUEST_SOURCES
from sandbox.drivers import guest_source, last_result
from sandbox.heuristic import Harness
from sandbox.host import GuestRun, Limits, Mount, run_guest
from sandbox.model_door import GUEST_DIR, GUEST_MODULE, ModelDoor, failed_outcome
from sandbox.run_outcomes import (
    MAX_ITEMS,
    _bounded_details,
    _failure,
    _parse_report,
    _refused,
    _tail,
)
from sandbox.runtime import Runtime
from sandbox.staging import StagingError, stage_file

MAX_OUTPUT_BYTES = 4 * 1024 * 1024
STAGED_MTIME = 1_704_067_200  # 2024-01-01, the virtual clock's origin
SHIFTED_SEED = 0x5EED_5EED
SHIFTED_CLOCK_NS = 366 * 86_400 * 1_000_000_000
INPUTS_DOMAIN = b"swarm-inputs\x00"
RUNNER_CONTEXT = "swarm_text.json"  # what a text strategy's runner reads from /runner/


def candidate_digest(strategy: Mapping[str, str]) -> bytes:
    """SHA-256 of the candidate's files in canonical msgpack (the same bytes on every peer)."""
    return hashlib.sha256(canonical_encode(dict(strategy))).digest()


def inputs_seed(problem_id: str, strategy: Mapping[str, str]) -> int:
    """The seed a package's generator draws this candidate's inputs from: the first 8 bytes of
    SHA-256("swarm-inputs" NUL, problem id, candidate digest), top bit cleared. Any peer
    replays it; no candidate can choose it without changing itself, and so its seed."""
    material = INPUTS_DOMAIN + bytes.fromhex(problem_id) + candidate_digest(strategy)
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big") >> 1


def _module_name(path: str) -> str:
    return path[: -len(".py")].replace("/", ".")


class Evaluator:
    """Scores candidate strategies of one problem; stages its fixed files once.

    Raises StagingError (a ValueError) for a problem whose file names cannot be staged safely;
    the record schema refuses those already, so this is defence in depth."""

    def __init__(
        self,
        runtime: Runtime,
        problem: Problem,
        workdir: Path | None = None,
        *,
        shifted_world: int = 0,
        inputs_problem_id: str | None = None,
    ) -> None:
        """`shifted_world=n > 0` runs the evaluator phase with other ambient randomness and a
        clock n years later: a sound evaluator scores the same there (`node.publish.validate`).
        `inputs_problem_id` draws fresh inputs as for that problem (validation compares a
        modified copy of a problem with the original on the same inputs)."""
        self.runtime = runtime
        self.problem = problem
        self._inputs_problem_id = inputs_problem_id or problem.id
        self._evaluator_seed = problem.seed + 1 + SHIFTED_SEED * shifted_world
        self._evaluator_clock_ns = SHIFTED_CLOCK_NS * shifted_world
        self._root = Path(tempfile.mkdtemp(prefix="swarm-eval-", dir=workdir))
        self._public = self._root / "public"
        self._private = self._root / "private"
        self._evaluator = self._root / "evaluator"
        self._generator = self._root / "generator"
        self._runner = self._root / "runner"
        self._evaluator_modules: dict[str, str] = {}
        self._generator_modules: dict[str, str] = {}
        self._runner_modules: dict[str, str] = {}
        for directory in (
            self._public, self._private, self._evaluator, self._generator, self._runner
        ):
            directory.mkdir(mode=0o700)
        try:
            self._stage_problem(problem)
            # A heuristic package: its fixed harness drives the strategy (sandbox/heuristic.py).
            self._harness = Harness.staged(runtime, problem, self._root)
            # The guest's model module, mounted only for runs given a model door.
            self._model = self._root / "model"
            self._model.mkdir(mode=0o700)
            stage_file(self._model, f"{GUEST_MODULE}.py", _guest_model_source(), STAGED_MTIME)
        except StagingError:
            self.close()
            raise

    def _stage_problem(self, problem: Problem) -> None:
        mutable = set(problem.mutable)
        for path, content in problem.files.items():
            if path.startswith("data/public/"):
                stage_file(self._public, path.removeprefix("data/public/"), content, STAGED_MTIME)
            elif path.startswith("data/private/"):
                stage_file(self._private, path.removeprefix("data/private/"), content, STAGED_MTIME)
            elif path not in mutable and path != "problem.toml" and not path.startswith("data/"):
                stage_file(self._evaluator, path, content, STAGED_MTIME)
                if path.endswith(".py"):
                    self._evaluator_modules[_module_name(path)] = f"/evaluator/{path}"
        generator = problem.generator
        if generator is not None and generator in problem.files and generator not in mutable:
            # The generator alone runs in phase 1 too, before the strategy is imported.
            stage_file(self._generator, generator, problem.files[generator], STAGED_MTIME)
            self._generator_modules[_module_name(generator)] = f"/generator/{generator}"
        runner = problem.runner
        if runner is not None and runner in problem.files and runner not in mutable:
            # A text strategy: the fixed runner is phase 1's entry module; it reads the
            # candidate's text from /strategy/ (docs/experiment-package.md#text-strategies).
            stage_file(self._runner, runner, problem.files[runner], STAGED_MTIME)
            samples = problem.model.samples if problem.model is not None else 1
            text = {"strategy_dir": "/strategy", "mutable": problem.mutable, "samples": samples}
            stage_file(self._runner, RUNNER_CONTEXT, json.dumps(text).encode(), STAGED_MTIME)
            self._runner_modules[_module_name(runner)] = f"/runner/{runner}"

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

    def with_wall_time(self, wall_s: float) -> Evaluator:
        """Another evaluator of the same problem on the same inputs, but with `wall_s` of wall
        time: a run again that only its fuel should end (a replay or a spot check that timed
        out on a loaded machine). The caller closes it."""
        budget = self.problem.budget
        patient = self.problem.model_copy(update={
            "budget": budget.model_copy(update={"wall_s": wall_s})})
        return Evaluator(self.runtime, patient, inputs_problem_id=self._inputs_problem_id)

    def evaluate(self, strategy: Mapping[str, str], door: ModelDoor | None = None) -> Outcome:
        """One evaluation. Never raises for anything the strategy or evaluator does, nor for
        a candidate whose file names are not exactly the problem's mutable files (`invalid`).

        `door` serves both phases' model calls (sandbox/model_door.py); once it failed, the
        outcome says so whatever the guest did afterwards."""
        outcome = self._evaluate(strategy, door)
        failure = None if door is None else door.failure
        return outcome if failure is None else failed_outcome(outcome, failure)

    def _evaluate(self, strategy: Mapping[str, str], door: ModelDoor | None) -> Outcome:
        # A fresh directory per run: one Evaluator may serve several threads at once.
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self._root))
        try:
            ran = self._run_strategy(strategy, run_dir, door)
            if isinstance(ran, Outcome):
                return ran
            first, result, seed = ran
            output_dir = run_dir / "output"
            output_dir.mkdir(mode=0o700)
            stage_file(output_dir, "output.json", result, STAGED_MTIME)
            return self._run_evaluator(first, output_dir, seed, door)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _model_mounts(self, config: dict[str, Any], door: ModelDoor | None) -> list[Mount]:
        """With a door, the guest may import `swarm_model`; without, nothing changes (and
        neither does any other problem's fuel)."""
        if door is None:
            return []
        config["files"] = {**config["files"], GUEST_MODULE: f"{GUEST_DIR}/{GUEST_MODULE}.py"}
        return [Mount(self._model, GUEST_DIR)]

    def strategy_output(
        self, strategy: Mapping[str, str], door: ModelDoor | None = None
    ) -> bytes | None:
        """Phase 1 alone: the candidate's result as JSON bytes, or None if it produced none
        (the publication checks replay a baseline's output as a literal)."""
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self._root))
        try:
            ran = self._run_strategy(strategy, run_dir, door)
            return None if isinstance(ran, Outcome) else ran[1]
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _stage_strategy(self, strategy: Mapping[str, str], strategy_dir: Path) -> str | None:
        """Stage the candidate's files; why not, if its names are not the mutable files."""
        if set(strategy) != set(self.problem.mutable):
            given = ", ".join(sorted(map(repr, strategy)))
            expected = ", ".join(sorted(map(repr, self.problem.mutable)))
            return (
                f"the candidate's files ({given:.300}) are not the problem's mutable files "
                f"({expected:.300})"
            )
        try:
            for path, source in strategy.items():
                stage_file(strategy_dir, path, source.encode("utf-8"), STAGED_MTIME)
        except (StagingError, UnicodeEncodeError) as error:
            return f"the candidate cannot be staged: {error}"
        return None

    def _run_strategy(
        self, strategy: Mapping[str, str], run_dir: Path, door: ModelDoor | None = None
    ) -> Outcome | tuple[GuestRun, bytes, int | None]:
        """Phase 1: the strategy's run, its result and the inputs seed, or the outcome that
        ends the evaluation there."""
        problem = self.problem
        strategy_dir = run_dir / "strategy"
        strategy_dir.mkdir(mode=0o700)
        if problem.generator is not None and not self._generator_modules:
            # Never let a candidate's own file (or nothing) stand in for the generator.
            return _refused(f"the problem's generator {problem.generator!r:.100} is not one "
                            "of its fixed files")
        if problem.runner is not None and not self._runner_modules:
            return _refused(f"the problem's runner {problem.runner!r:.100} is not one of its "
                            "fixed files")
        refused = self._stage_strategy(strategy, strategy_dir)
        if refused is not None:
            return _refused(refused)
        modules = {
            _module_name(path): f"/strategy/{path}" for path in strategy if path.endswith(".py")
        }
        seed = inputs_seed(self._inputs_problem_id, strategy) if problem.generator else None
        if problem.runner is not None:
            modules = dict(self._runner_modules)  # the text is data; no candidate code runs
        entry_module = problem.runner or problem.mutable[0]
        config: dict[str, Any] = {
            "files": {**modules, **self._generator_modules},
            "module": _module_name(entry_module),
            "entry": problem.entry,
            "public_dir": "/data/public",
        }
        if problem.generator is not None:
            config |= {"generator": _module_name(problem.generator), "seed": seed}
        limits = self._limits()
        if self._harness is not None:
            ran = self._harness.run(strategy, [Mount(strategy_dir, "/strategy"), Mount(
                self._public, "/data/public"), Mount(self._generator, "/generator")], config,
                limits)
            return ran if isinstance(ran, Outcome) else (*ran, seed)
        model_mounts = self._model_mounts(config, door)  # before the config is written out
        first = run_guest(
            self.runtime,
            guest_source(self.runtime, "strategy_phase", config),
            [Mount(strategy_dir, "/strategy"), Mount(self._public, "/data/public")]
            + ([Mount(self._generator, "/generator")] if self._generator_modules else [])
            + ([Mount(self._runner, "/runner")] if self._runner_modules else [])
            + model_mounts,
            limits,
            seed=problem.seed,
            door=door,
        )
        failed = _failure(first, phase=1, memory_limit=limits.memory_bytes)
        if failed is not None:
            status, stderr = failed
            return Outcome(
                status=status,
                strategy_fuel=first.fuel_used if status != "timeout" else 0,
                stderr_tail=stderr[-MAX_STDERR_TAIL:],
                details={"failed_phase": 1},
            )
        result = last_result(first.stdout)
        if first.stdout_overflow or result is None or len(result) > MAX_OUTPUT_BYTES:
            why = (
                f"the strategy's output exceeds {MAX_OUTPUT_BYTES} bytes"
                if first.stdout_overflow or (result is not None)
                else "the strategy produced no result"
            )
            return Outcome(
                status="invalid_output",
                strategy_fuel=first.fuel_used,
                stderr_tail=(_tail(first.stderr_tail) + f"\n[sandbox] {why}").strip()[
                    -MAX_STDERR_TAIL:
                ],
                details={"failed_phase": 1},
            )
        return first, result, seed

    def _run_evaluator(
        self, first: GuestRun, output_dir: Path, seed: int | None, door: ModelDoor | None = None
    ) -> Outcome:
        """Phase 2 on phase 1's result, in a fresh interpreter."""
        problem = self.problem
        config: dict[str, Any] = {
            "files": self._evaluator_modules,
            "module": "evaluate",
            "output_path": "/output/output.json",
            "public_dir": "/data/public",
            "private_dir": "/data/private",
        }
        if problem.generator is not None:
            config |= {"generator": _module_name(problem.generator), "seed": seed}
        model_mounts = self._model_mounts(config, door)  # before the config is written out
        second = run_guest(
            self.runtime,
            guest_source(self.runtime, "evaluator_phase", config),
            [
                Mount(self._evaluator, "/evaluator"),
                Mount(self._public, "/data/public"),
                Mount(self._private, "/data/private"),
                Mount(output_dir, "/output"),
                *model_mounts,
            ],
            self._limits(),
            seed=self._evaluator_seed,
            clock_start_ns=self._evaluator_clock_ns,
            door=door,
        )
        outcome = self._score(first, second, _tail(first.stderr_tail))
        return outcome if self._harness is None else self._harness.withhold(outcome)

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
        report_bytes = last_result(second.stdout)
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


def _guest_model_source() -> bytes:
    return (GUEST_SOURCES / f"{GUEST_MODULE}.py").read_bytes()
