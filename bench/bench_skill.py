"""Issue 13 figures: the offline loop on examples/skill_landing_copy (stand-in model, real
sandbox, real SQLite store) over several mutation seeds, and the noise gate's error rates on
synthetic noisy verdicts against a plain "strictly better score" rule.

    .venv/bin/python bench/bench_skill.py [--seeds 10] [--iterations 60] [--trials 1000]

Part 1 prints, per seed: baseline, best, iterations to the stop, kept changes, model calls
(fresh / cached) and the stop reason. Part 2 draws pairs of outcomes of a model whose every
(case, check) verdict passes with probability p, independently per sample: a *neutral* change
(same p) and a *real* one (one check fixed on k of the 10 cases), and counts how often each rule
keeps the candidate. The gate is node/noise_gate.py exactly as the loop calls it.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.llm import ModelGateway, StandinProvider  # noqa: E402
from node.loop import LoopConfig, ResearchLoop  # noqa: E402
from node.model_evaluations import ModelEvaluations  # noqa: E402
from node.mutators import OfflineMutator  # noqa: E402
from node.noise_gate import gate  # noqa: E402
from node.problem import load_package  # noqa: E402
from node.store import RecordStore  # noqa: E402
from research_dag import Metric, Outcome  # noqa: E402
from sandbox import Evaluator, load_runtime  # noqa: E402

EXAMPLE = ROOT / "examples" / "skill_landing_copy"
CASES, CHECKS = 10, 5
UP = Metric(name="pass_rate", direction="maximize", target=0.95)


def loop_runs(seeds: int, iterations: int) -> None:
    problem = load_package(EXAMPLE)
    runtime = load_runtime()
    print(f"## offline loop, {EXAMPLE.name}, stand-in model, {iterations} iterations at most")
    print("seed  baseline  best  iterations  kept  calls(fresh/cached)  stop            seconds")
    reached = []
    for seed in range(seeds):
        gateway = ModelGateway(StandinProvider())
        with tempfile.TemporaryDirectory() as tmp, Evaluator(runtime, problem) as evaluator, \
                RecordStore.open(Path(tmp) / "r.sqlite") as store:
            evaluate = ModelEvaluations(evaluator, problem, gateway)
            loop = ResearchLoop(problem, evaluate, OfflineMutator(), store,
                                LoopConfig(iterations=iterations, seed=seed))
            started = time.perf_counter()
            summary = trio.run(loop.run)
            seconds = time.perf_counter() - started
        usage = gateway.usage
        fresh, cached = usage.calls, usage.cached
        if summary.stop_reason == "target_reached":
            reached.append(summary.iterations)
        print(f"{seed:>4}  {summary.baseline_score:>8.2f}  {summary.best_score:>4.2f}  "
              f"{summary.iterations:>10}  {summary.kept:>4}  {fresh:>8}/{cached:<10}  "
              f"{summary.stop_reason:<15} {seconds:>7.1f}")
    if reached:
        ordered = sorted(reached)
        print(f"target reached (>= 0.95, three evaluations running) in {len(reached)} of "
              f"{seeds} seeds; iterations median {ordered[len(ordered) // 2]}, "
              f"max {ordered[-1]}")


def _outcome(rng: random.Random, p: list[float], samples: int) -> Outcome:
    details: dict[str, float | int | str | bool] = {}
    passed = 0
    for case in range(CASES):
        runs = []
        for _ in range(samples):
            bits = "".join("1" if rng.random() < p[case * CHECKS + k] else "0"
                           for k in range(CHECKS))
            passed += bits.count("1")
            runs.append(bits)
        details[f"case:{case:02d}"] = " ".join(runs)
    return Outcome(status="ok", score=passed / (CASES * CHECKS * samples), details=details)


def gate_rates(trials: int, p: float, samples: int) -> None:
    rng = random.Random(13)
    base = [p] * (CASES * CHECKS)
    print(f"\n## noise gate vs plain 'better', p(check passes) = {p}, samples = {samples}, "
          f"{trials} trials each")
    print("change                             plain keeps   gate keeps")
    for fixed, checks in ((0, 0), (5, 1), (10, 1), (5, 3), (10, 3)):
        better = list(base)
        for case in range(fixed):
            for check in range(checks):
                better[case * CHECKS + check] = 1.0  # fixed on this case
        plain = kept = 0
        for _ in range(trials):
            incumbent = _outcome(rng, base, samples)
            candidate = _outcome(rng, better, samples)
            assert incumbent.score is not None and candidate.score is not None
            plain += UP.better(candidate.score, incumbent.score)
            decision = gate(UP, candidate, incumbent)
            kept += bool(decision and decision.kept)
        label = ("neutral (no real effect)" if fixed == 0
                 else f"fixes {checks} check(s) on {fixed}/10 cases")
        print(f"{label:<34} {plain / trials:>10.1%}   {kept / trials:>10.1%}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    if args.seeds:
        loop_runs(args.seeds, args.iterations)
    for p, samples in ((0.7, 1), (0.7, 3), (0.9, 1)) if args.trials else ():
        gate_rates(args.trials, p, samples)


if __name__ == "__main__":
    main()
