"""What a batch of 16 buys a standard optimiser (issue 14's 16-node goal, as a reference):
Optuna's samplers on finance_factors' numeric literals and switches (bench_search.py's
`ours+bools` space), asked for one candidate per round (one node) or for a batch of `--batch`
candidates per round (sixteen nodes that share one model: every result of a round is told
before the next round is asked), until a candidate reaches the package's target.

    .venv/bin/python bench/bench_batch.py [--samplers tpe,random] [--seeds 21] [--batch 16]
        [--cap-one 1000] [--cap-many 60] [--only one|batch]

Rounds to target per seed, the medians and the ratio (one candidate a round / a batch a
round), the figure the swarm's `bench_swarm.py --only rounds` reports for its nodes (goal:
>= 12x at 16). A run still short of the target at its cap is censored (counted as cap + 1).
TPE's batches use its constant liar (running trials count as bad), Optuna's own remedy for
parallel workers proposing alike. The baseline is enqueued first, as in bench_search.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_search import Param, optuna_space  # noqa: E402

from node.problem import baseline_files, load_package  # noqa: E402
from research_dag import Outcome, Problem  # noqa: E402
from sandbox import Evaluator, load_runtime  # noqa: E402


def _candidate(files: Mapping[str, str], params: list[Param],
               values: Mapping[str, Any]) -> dict[str, str]:
    candidate = dict(files)
    for param in sorted(params, key=lambda p: (p.path, -p.start)):
        data = candidate[param.path].encode()
        text = param.text(values[param.name])
        assert text is not None
        candidate[param.path] = (data[: param.start] + text.encode() + data[param.end :]).decode()
    return candidate


def rounds_to_target(problem: Problem, evaluate: Callable[[Mapping[str, str]], Outcome],
                     sampler_name: str, seed: int, batch: int, cap: int) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    files = baseline_files(problem)
    params = optuna_space(problem, files, "ours+bools")
    distributions = {param.name: param.distribution for param in params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if sampler_name == "tpe":
            sampler: Any = optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                                      constant_liar=batch > 1)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction=problem.metric.direction, sampler=sampler)
    study.enqueue_trial({param.name: param.baseline for param in params})
    target = problem.metric.target
    assert target is not None
    for round_index in range(1, cap + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trials = [study.ask(distributions) for _ in range(batch)]
        reached = False
        for trial in trials:
            outcome = evaluate(_candidate(files, params, trial.params))
            if outcome.status == "ok" and outcome.score is not None:
                study.tell(trial, outcome.score)
                reached = reached or outcome.score == target or problem.metric.better(
                    outcome.score, target)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if reached:
            return round_index
    return cap + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", default="finance_factors")
    parser.add_argument("--samplers", default="tpe,random")
    parser.add_argument("--seeds", type=int, default=21)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--only", choices=("one", "batch"), default=None,
                        help="only the one-a-round runs, or only the batch runs (no ratio)")
    parser.add_argument("--cap-one", type=int, default=1000)
    parser.add_argument("--cap-many", type=int, default=60)
    args = parser.parse_args()
    problem = load_package(ROOT / "examples" / args.example)
    runtime = load_runtime()
    with Evaluator(runtime, problem) as evaluator:
        for name in args.samplers.split(","):
            medians = {}
            runs = ((1, args.cap_one), (args.batch, args.cap_many))
            for batch, cap in {"one": runs[:1], "batch": runs[1:], None: runs}[args.only]:
                started = time.perf_counter()
                rounds = [rounds_to_target(problem, evaluator.evaluate, name, seed, batch, cap)
                          for seed in range(args.first_seed, args.first_seed + args.seeds)]
                medians[batch] = statistics.median(rounds)
                censored = sum(1 for r in rounds if r > cap)
                print(f"{name:<7} batch {batch:>2}: rounds to target {rounds} (median "
                      f"{medians[batch]}, mean {statistics.mean(rounds):.1f}; {censored} censored "
                      f"at {cap}; {time.perf_counter() - started:.0f} s)", flush=True)
            if args.only is not None:
                continue
            print(f"{name:<7} batch 1 / batch {args.batch} = "
                  f"{medians[1] / medians[args.batch]:.1f}x fewer rounds", flush=True)


if __name__ == "__main__":
    main()
