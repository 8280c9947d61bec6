"""Dry runs before a problem is published: the checks a package must pass in the sandbox, each
failure worded as what to change (for a person, or for the model that wrote the package)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from node.llm import ModelGateway, StandinProvider
from node.problem import baseline_files
from node.publish.probes import (
    DESCRIPTIONS,
    GAMING,
    LEAK_MARKER,
    MEMORISER,
    degraded_kinds,
    memoriser_files,
    probe_files,
    probe_kinds,
)
from research_dag import Outcome, Problem
from sandbox import Evaluator, ModelDoor, Runtime

HEADROOM = 0.5  # the baseline may use at most half of each phase's fuel budget
MIN_LEAK_BYTES = 32  # shorter private files may appear in public data by coincidence
MAX_PARALLEL = 4  # probe evaluations at once (each is one CPU-bound sandbox run)
SHIFTED_WORLDS = 2  # one shift can miss a random subsample that happens to score the same
# The evaluator saw through a probe (a crash would be the probe's own failure, not its verdict).
REJECTED = ("invalid", "invalid_output")

Progress = Callable[[str], None]


class DryRunFailed(Exception):
    """The package loads but is not fit to publish; the message says why and what to change."""


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str  # on failure: what is wrong and what to change


@dataclass(frozen=True)
class Validation:
    checks: list[Check] = field(default_factory=list)
    baseline: Outcome | None = None
    evaluations: int = 0

    @property
    def ok(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def baseline_score(self) -> float | None:
        return None if self.baseline is None else self.baseline.score

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def summary(self) -> dict[str, object]:
        outcome = self.baseline
        return {
            "ok": self.ok,
            "score": self.baseline_score,
            "fuel": 0 if outcome is None else max(outcome.strategy_fuel, outcome.evaluator_fuel),
            "evaluations": self.evaluations,
            "checks": {check.name: check.passed for check in self.checks},
            "failures": [f"{check.name}: {check.message}" for check in self.failures],
        }


def _fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.6g}"


def _why(outcome: Outcome) -> str:
    tail = outcome.stderr_tail.strip().splitlines()[-3:]
    return outcome.status + (f" ({' | '.join(tail)})" if tail else "")


class _Session:
    """One package's evaluations, counted, with progress lines for the slow part."""

    def __init__(self, runtime: Runtime, problem: Problem, progress: Progress | None) -> None:
        self.runtime = runtime
        self.problem = problem
        self.files = baseline_files(problem)
        self.progress = progress
        self.evaluations = 0
        self._lock = threading.Lock()
        # A package that asks a model is validated with the stand-in (offline, deterministic).
        self.gateway = None if problem.model is None else ModelGateway(StandinProvider())

    def door(self) -> ModelDoor | None:
        """A fresh door for one evaluation's model calls (None: the package asks no model)."""
        return None if self.gateway is None else self.gateway.session(self.problem)

    @contextlib.contextmanager
    def count(self, label: str) -> Iterator[None]:
        """Count one sandbox evaluation and report it as progress."""
        with self._lock:
            self.evaluations += 1
            if self.progress is not None:
                self.progress(f"dry run: {label}")
        yield

    def evaluate(self, evaluator: Evaluator, files: dict[str, str], label: str) -> Outcome:
        with self.count(label):
            return evaluator.evaluate(files, self.door())

    def evaluate_all(
        self, evaluator: Evaluator, jobs: dict[str, tuple[dict[str, str], str]]
    ) -> dict[str, Outcome]:
        """Independent evaluations side by side (one Evaluator serves several threads; each
        run is deterministic, so the order they finish in changes nothing)."""
        workers = max(1, min(len(jobs), os.cpu_count() or 1, MAX_PARALLEL))
        with ThreadPoolExecutor(workers, thread_name_prefix="dry-run") as pool:
            futures = {name: pool.submit(self.evaluate, evaluator, files, label)
                       for name, (files, label) in jobs.items()}
            return {name: future.result() for name, future in futures.items()}


def validate_problem(
    runtime: Runtime, problem: Problem, progress: Progress | None = None
) -> Validation:
    """Every check; a failed baseline stops the rest (they compare against it)."""
    session = _Session(runtime, problem, progress)
    checks: list[Check] = []
    with Evaluator(runtime, problem) as evaluator:
        first = session.evaluate(evaluator, session.files, "baseline")
        second = session.evaluate(evaluator, session.files, "baseline again")
        if first.status != "ok":
            checks.append(Check("baseline", False, (
                f"the baseline strategy does not evaluate: {_why(first)}; "
                "debug it with `swarm eval` on the package")))
            return Validation(checks, first, session.evaluations)
        checks.append(Check("baseline", True, f"scores {_fmt(first.score)}"))
        checks.append(_identical(first, second))
        checks.append(_headroom(problem, first))
        checks.append(_target(problem, first))
        checks.append(_world(session, first))
        checks.extend(_probes(session, evaluator, first))
        checks.append(_memoriser(session, evaluator, first))
    checks.append(_held_out(session, first))
    checks.append(_no_leak(problem))
    return Validation(checks, first, session.evaluations)


def dry_run(runtime: Runtime, problem: Problem, progress: Progress | None = None) -> Validation:
    """`validate_problem`, raising DryRunFailed with every failure, one per line."""
    validation = validate_problem(runtime, problem, progress)
    if not validation.ok:
        raise DryRunFailed("; ".join(f"{c.name}: {c.message}" for c in validation.failures))
    return validation


def _identical(first: Outcome, second: Outcome) -> Check:
    if first == second:
        return Check("deterministic", True, "identical score and fuel twice")
    return Check("deterministic", False, (
        "the baseline gave different outcomes on two identical runs "
        f"(score {_fmt(first.score)} vs {_fmt(second.score)}, fuel {first.strategy_fuel:,}"
        f"/{first.evaluator_fuel:,} vs {second.strategy_fuel:,}/{second.evaluator_fuel:,}); "
        "nothing may depend on the clock, unseeded randomness or file metadata"))


def _headroom(problem: Problem, outcome: Outcome) -> Check:
    used = max(outcome.strategy_fuel, outcome.evaluator_fuel)
    if used <= problem.budget.fuel * HEADROOM:
        return Check("headroom", True, f"{used:,} of {problem.budget.fuel:,} fuel per phase")
    return Check("headroom", False, (
        f"the baseline uses {used:,} fuel in one phase; keep it under half the budget "
        f"({problem.budget.fuel:,}) so mutations have headroom: raise [budget] fuel "
        "or make the work smaller"))


def _target(problem: Problem, outcome: Outcome) -> Check:
    assert outcome.score is not None
    if not problem.metric.reached(outcome.score):
        return Check("target", True, "the baseline does not meet the target yet")
    return Check("target", False, (
        f"the baseline already meets the target ({_fmt(outcome.score)} vs "
        f"{problem.metric.target}): there is nothing to research; make the target harder "
        "or the baseline plainer"))


def _world(session: _Session, baseline: Outcome) -> Check:
    """The evaluator phase again in shifted worlds: other ambient randomness, later clocks."""
    for world in range(1, SHIFTED_WORLDS + 1):
        with Evaluator(session.runtime, session.problem, shifted_world=world) as shifted:
            other = session.evaluate(shifted, session.files, f"evaluator in shifted world {world}")
        if (other.status, other.score) != (baseline.status, baseline.score):
            return Check("world", False, (
                f"the evaluator's score changes with the clock or unseeded randomness "
                f"({_fmt(baseline.score)} vs {_fmt(other.score)}, {other.status}): seed every "
                "random generator explicitly (random.Random(seed)) and never read the time"))
    return Check("world", True, "the score does not depend on the clock or ambient randomness")


def _beats(problem: Problem, probe: Outcome, baseline: Outcome) -> bool:
    return (
        probe.status == "ok"
        and probe.score is not None
        and baseline.score is not None
        and problem.metric.better(probe.score, baseline.score)
    )


def _worse(problem: Problem, probe: Outcome, baseline: Outcome) -> bool:
    if probe.status in REJECTED:
        return True
    return (
        probe.status == "ok"
        and probe.score is not None
        and baseline.score is not None
        and problem.metric.better(baseline.score, probe.score)
    )


def _probes(session: _Session, evaluator: Evaluator, baseline: Outcome) -> Iterator[Check]:
    problem = session.problem
    kinds = probe_kinds(problem)
    outcomes = session.evaluate_all(evaluator, {
        kind: (probe_files(problem, session.files, kind), f"a strategy that {DESCRIPTIONS[kind]}")
        for kind in kinds
    })
    beaten = [
        f"a strategy that {DESCRIPTIONS[kind]} scores {_fmt(outcomes[kind].score)}"
        for kind in GAMING if _beats(problem, outcomes[kind], baseline)
    ]
    if beaten:
        yield Check("gaming", False, (
            f"{'; '.join(beaten)} — better than the baseline's {_fmt(baseline.score)}: the "
            "evaluator must check types, shapes and finiteness and give such output a bad score "
            "or valid: False (if a constant answer is genuinely better, the baseline is too weak: "
            "make it at least that good)"))
    else:
        yield Check("gaming", True, f"{len(GAMING)} gaming strategies do not beat the baseline")
    degraded, every = degraded_kinds(problem)
    if (all if every else any)(_worse(problem, outcomes[kind], baseline) for kind in degraded):
        yield Check("discriminates", True, "a degraded strategy scores worse")
    else:
        tried = ", ".join(f"{kind} {_fmt(outcomes[kind].score)}" for kind in degraded)
        lead = "a constant and a random function must both score worse; " if every else ""
        yield Check("discriminates", False, (
            f"{lead}no degraded strategy scores worse than the baseline "
            f"({_fmt(baseline.score)}; {tried}): the evaluator must measure the output itself"))
    snoop = session.evaluate(evaluator, probe_files(problem, session.files, "snoop"),
                             "a strategy that reads the evaluator's files")
    read = [line.split(LEAK_MARKER, 1)[1] for line in snoop.stderr_tail.splitlines()
            if LEAK_MARKER in line]
    if not read and "FileExistsError" in snoop.stderr_tail:  # a phase whose messages are withheld
        read = ["a fixed file or data/private"]
    if read:
        yield Check("sealed", False, f"the strategy could read {', '.join(read)}")
    else:
        yield Check("sealed", True, "the strategy cannot read the evaluator or private data")


def _memoriser(session: _Session, evaluator: Evaluator, baseline: Outcome) -> Check:
    """The baseline's own output returned as a literal must not beat the baseline: over fixed
    inputs it would under any fuel metric, and then the loop rewards remembering answers."""
    problem = session.problem
    with session.count("the baseline's output, for the memoriser"):
        output = evaluator.strategy_output(session.files, session.door())
    if output is None:  # the baseline evaluated, so its strategy phase gives a result
        return Check("memoriser", False, "the baseline gave no output the second time")
    memo = session.evaluate(evaluator, memoriser_files(problem, session.files, output),
                            f"a strategy that {MEMORISER}")
    if not _beats(problem, memo, baseline):
        return Check("memoriser", True, "answering from memory does not beat the baseline")
    return Check("memoriser", False, (
        f"a strategy that {MEMORISER} scores {_fmt(memo.score)}, better than the baseline's "
        f"{_fmt(baseline.score)}: the inputs are fixed, so remembering answers beats computing "
        "them; draw inputs per candidate with a generator (problem.toml `generator`): see "
        "docs/experiment-package.md#fresh-inputs"))


def _held_out(session: _Session, baseline: Outcome) -> Check:
    """The evaluator must use data/private: blanking it changes the outcome."""
    problem = session.problem
    blank = {path: (b"" if path.startswith("data/private/") else content)
             for path, content in problem.files.items()}
    # The same fresh inputs as the original problem: only the private data differs.
    blanked = problem.model_copy(update={"files": blank})
    with Evaluator(session.runtime, blanked, inputs_problem_id=problem.id) as evaluator:
        outcome = session.evaluate(evaluator, session.files, "evaluator without its private data")
    if (outcome.status, outcome.score) != (baseline.status, baseline.score):
        return Check("held_out", True, "the score depends on data/private")
    return Check("held_out", False, (
        "the score does not change when data/private is emptied: the evaluator must score "
        "against held-out data in data/private that the strategy never sees"))


def _no_leak(problem: Problem) -> Check:
    public = {p: c for p, c in problem.files.items() if p.startswith("data/public/")}
    for path, content in problem.files.items():
        if not path.startswith("data/private/") or len(content.strip()) < MIN_LEAK_BYTES:
            continue
        for other, text in public.items():
            if content.strip() in text:
                return Check("no_leak", False, (
                    f"{other} contains {path}: the strategy could read the held-out answers; "
                    "keep them only in data/private"))
    return Check("no_leak", True, "no private file appears in the public data")
