"""The search comparison harness (issue 14): equal budgets of distinct evaluations on the bundled
numeric examples, several seeds, medians with their spread, for

- `before`: the offline mutator as it was (the loop with its operator families switched off:
  LoopConfig(families=()), the operators drawn exactly as before, no crash learning);
- `after`: the loop with the bandit over families (model-based, structural, perturbation);
- `model`: the loop with the model-based family alone (what the model operator does by itself);
- `tpe`: Optuna's TPE on the same numeric literals of the same strategy, in the ranges the
  model-based operator uses (node/mutators/model.py, knob_range), the baseline enqueued first;
- `random`: Optuna's random sampler on the same space;
- `cmaes`: Optuna's CMA-ES sampler on the same space (needs the `cmaes` package; measured to
  choose the model's sampler, docs/search.md).

    .venv/bin/python bench/bench_search.py [--examples finance_factors,...] [--seeds 5]
        [--budget 50] [--methods before,after,tpe,random] [--retune 1] [--json out.json]
    .venv/bin/python bench/bench_search.py --latency [--observations 1000]
    .venv/bin/python bench/bench_search.py --compare A.json[,A2.json] B.json[,B2.json]

`--compare`: two `--json` files' runs (comma-separated files: one run split over seeds) of
each example they share (the first method of each), median [min, max] of the best over seeds,
and a two-sided exact Mann-Whitney U test of the two samples (seeds are independent runs, not
pairs; the metric's direction decides "better").

`--latency`: CPU milliseconds per model-based proposal on finance_factors' structure fitted to
`observations` evaluated strategies (synthetic scores), against a plain offline proposal
measured in the same process (the issue's bound: <= 50 ms at 1,000 observations).

Every method counts the baseline's evaluation as one of its `budget`; the loop's repeated
candidates (answered from its cache) are not counted. Targets are ignored (the loop's target
streak is set out of reach), so every run spends the whole budget.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.loop import LoopConfig, ResearchLoop  # noqa: E402
from node.mutators import (  # noqa: E402
    FAMILY_NAMES,
    OfflineMutator,
    interaction,
)
from node.mutators import memory as search_memory  # noqa: E402
from node.mutators import model as model_search  # noqa: E402
from node.mutators import search as family_search  # noqa: E402
from node.mutators.memory import MODEL  # noqa: E402
from node.mutators.model import knob_range  # noqa: E402
from node.mutators.structure import Knob, knob_text, shape_of  # noqa: E402
from node.problem import baseline_files, load_package  # noqa: E402
from node.store import RecordStore  # noqa: E402
from research_dag import Outcome, Problem  # noqa: E402
from sandbox import Evaluator, load_runtime  # noqa: E402

EXAMPLES = ("finance_factors", "tiny_training", "search_ranking", "faster_code")
METHODS = ("before", "after", "tpe", "random")
STALE = 50


class Counted:
    """An evaluator that counts its distinct evaluations (the loop answers repeats itself)."""

    def __init__(self, evaluate: Callable[[Mapping[str, str]], Outcome]) -> None:
        self.evaluate = evaluate
        self.calls = 0

    def __call__(self, files: Mapping[str, str]) -> Outcome:
        self.calls += 1
        return self.evaluate(files)


async def run_loop(problem: Problem, evaluate: Callable[[Mapping[str, str]], Outcome],
                   seed: int, budget: int, families: tuple[str, ...], retune: int,
                   family_prior: Mapping[str, tuple[float, float]] | None = None
                   ) -> dict[str, Any]:
    counted = Counted(evaluate)
    kinds: dict[str, int] = {}
    kept: dict[str, int] = {}
    crashes = 0
    with tempfile.TemporaryDirectory() as directory, \
            RecordStore.open(Path(directory) / "r.sqlite") as store:
        config = LoopConfig(iterations=budget * 6, seed=seed, target_streak=10**9,
                            families=families, retune=retune)
        loop = ResearchLoop(problem, counted, OfflineMutator(), store, config)
        if family_prior and loop.search is not None:
            loop.search.family_prior = dict(family_prior)
        summary = await loop.prepare()
        steps = idle = 0
        # Past STALE steps without a new evaluation, the search is taken as exhausted (every
        # change it can make was evaluated: faster_code's switches).
        while counted.calls < budget and steps < budget * 6 and idle < STALE:
            before = counted.calls
            result = await loop.step()
            steps += 1
            idle = 0 if counted.calls > before else idle + 1
            if isinstance(result, str):
                break
            if result is not None and counted.calls > before:
                label = result.family or result.mutation_kind.split(":")[0]
                kinds[label] = kinds.get(label, 0) + 1
                if result.status == "keep":
                    kept[label] = kept.get(label, 0) + 1
                crashes += result.status not in ("keep", "discard")
    return {"best": summary.best_score, "evaluations": counted.calls, "families": kinds,
            "kept": kept, "crashes": crashes}


SPACES = ("ours", "wide", "sym2", "pos2", "ours+bools", "wide+bools", "sym2+bools",
          "pos2+bools", "wide2+bools")


@dataclass(frozen=True)
class Param:
    """One dimension of a TPE space: a numeric literal, or a switch (`True`/`False`)."""

    name: str
    distribution: Any
    path: str
    start: int
    end: int
    text: Callable[[Any], str | None]
    baseline: Any


def space_range(space: str, knob: Knob, anchor: float) -> tuple[float, float, bool]:
    """A knob's (low, high, log) in one of the harness's spaces: `ours` is the model's own
    (knob_range); `wide` four decades for positive floats, weights in [-10|a|, 10|a|] and ints
    over [1, 16a] on a log scale; `wide2` the same with ints over [1, 64a]; `sym2` weights in
    [-2|a|, 2|a|]; `pos2` weights in [0, 2|a|] (the others as ours)."""
    base = space.split("+")[0]
    low, high, log = knob_range(knob, anchor)
    weight = knob.affordance == "weight_vector" and not knob.integer
    magnitude = abs(anchor) if anchor else 1.0
    if weight and base in ("sym2", "pos2"):
        return (0.0 if base == "pos2" else -2 * magnitude), 2 * magnitude, False
    if base in ("wide", "wide2"):
        if weight:
            return -10 * magnitude, 10 * magnitude, False
        if knob.integer and anchor >= 1:
            return 1, max(round(anchor) * (16 if base == "wide" else 64), 16), True
        if not knob.integer and anchor > 0:
            return anchor / 100, anchor * 100, True
    return low, high, log


def optuna_space(problem: Problem, files: Mapping[str, str], space: str) -> list[Param]:
    import optuna

    shape = shape_of(files, problem.mutable)
    assert shape is not None
    params: list[Param] = []
    for index, (knob, anchor) in enumerate(zip(shape.knobs, shape.values, strict=True)):
        if knob.switch:  # a switch (the model's knob too): a category, in `+bools` spaces
            if space.endswith("+bools"):
                params.append(Param(
                    f"b{index}", optuna.distributions.CategoricalDistribution((False, True)),
                    knob.path, knob.start, knob.end,
                    lambda flag: "True" if flag else "False", anchor >= 0.5))
            continue
        low, high, log = space_range(space, knob, anchor)
        if knob.integer:
            distribution: Any = optuna.distributions.IntDistribution(int(low), int(high), log=log)
            baseline: Any = min(max(round(anchor), int(low)), int(high))
        else:
            distribution = optuna.distributions.FloatDistribution(low, high, log=log)
            baseline = min(max(anchor, low), high)

        params.append(Param(f"k{index}", distribution, knob.path, knob.start, knob.end,
                            functools.partial(_text, knob), baseline))
    return params


def _text(knob: Knob, value: Any) -> str | None:
    return knob_text(knob, float(value))


def run_optuna(problem: Problem, evaluate: Callable[[Mapping[str, str]], Outcome],
               seed: int, budget: int, sampler_name: str, space: str = "ours",
               multivariate: bool = True, startup: int = 10) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    files = baseline_files(problem)
    params = optuna_space(problem, files, space)
    distributions = {param.name: param.distribution for param in params}
    if sampler_name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler: Any = optuna.samplers.TPESampler(
                seed=seed, multivariate=multivariate, n_startup_trials=startup)
    elif sampler_name == "cmaes":  # needs the `cmaes` package (a measurement, not a dependency)
        sampler = optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction=problem.metric.direction, sampler=sampler)
    study.enqueue_trial({param.name: param.baseline for param in params})
    best: float | None = None
    best_params: dict[str, Any] = {}
    crashes = 0
    for _ in range(budget):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = study.ask(distributions)
        candidate = dict(files)
        for param in sorted(params, key=lambda p: (p.path, -p.start)):
            data = candidate[param.path].encode()
            text = param.text(trial.params[param.name])
            assert text is not None
            candidate[param.path] = (data[: param.start] + text.encode()
                                     + data[param.end :]).decode()
        outcome = evaluate(candidate)
        if outcome.status == "ok" and outcome.score is not None:
            study.tell(trial, outcome.score)
            if problem.metric.better(outcome.score, best):
                best, best_params = outcome.score, dict(trial.params)
        else:
            crashes += 1
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return {"best": best, "evaluations": budget, "families": {}, "crashes": crashes,
            "best_params": {k: (round(v, 4) if isinstance(v, float) else v)
                            for k, v in best_params.items()}}


def bench_latency(observations: int, proposals: int = 40) -> None:
    import random

    from node.mutators import MutationContext, Search
    from research_dag import Experiment

    problem = load_package(ROOT / "examples" / "finance_factors")
    files = baseline_files(problem)
    shape = shape_of(files, problem.mutable)
    assert shape is not None
    rng = random.Random(0)
    search = Search(problem, families=("model",))
    start = time.thread_time()
    base: str | None = None
    for n in range(observations + 1):
        values = ([float(rng.random() < 0.5) if k.switch else rng.uniform(-3, 3)
                   for k in shape.knobs] if n else list(shape.values))
        data = files["strategy.py"].encode()
        for knob, value in sorted(zip(shape.knobs, values, strict=True),
                                  key=lambda pair: -pair[0].start):
            text = knob_text(knob, value) or knob.text
            data = data[: knob.start] + text.encode() + data[knob.end :]
        record = Experiment.model_validate({
            "problem": problem.id, "strategy": {"strategy.py": data.decode()},
            "outcome": Outcome(status="ok", score=-sum((v - 0.5) ** 2 for v in values)),
            "author": "bench", "created_ms": n, "parent": base,
            "mutation_kind": "perturb_constant" if base else "baseline"}, strict=False)
        search.observe(record)
        base = base or record.id
    observed = time.thread_time() - start
    mutator = OfflineMutator()

    def timed(with_search: bool) -> list[float]:
        times = []
        for seed in range(proposals):
            context = MutationContext(problem=problem, best_files=files, best_score=None,
                                      rng=random.Random(seed),
                                      search=search if with_search else None)
            began = time.thread_time()  # CPU time: the machine is shared (wall time is noise)
            mutator.propose_now(context)
            times.append((time.thread_time() - began) * 1000)
        return times

    plain = timed(False)
    first = timed(True)[:1]  # the study is fitted to every observation once
    model = timed(True)
    print(f"observations {observations}: taking them in {observed:.2f} s "
          f"({observed / max(1, observations) * 1000:.2f} ms each); first model proposal "
          f"{first[0]:.1f} ms (fits the study)")
    print(f"model proposal median {statistics.median(model):.1f} ms CPU, max {max(model):.1f} ms; "
          f"plain offline proposal median {statistics.median(plain):.2f} ms "
          f"({statistics.median(model) / statistics.median(plain):.0f}x)")


def mann_whitney(a: list[float], b: list[float]) -> tuple[float, float]:
    """U of `a` against `b` (ties count a half) and its exact two-sided p-value under the null
    that both come from one distribution (the count of orderings, no ties: continuous scores)."""
    u = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
    n, m = len(a), len(b)
    # ways[i][j][k]: arrangements of i a's and j b's whose U is k
    ways: list[list[list[int]]] = [[[0] * (n * m + 1) for _ in range(m + 1)] for _ in range(n + 1)]
    ways[0][0][0] = 1
    for i in range(n + 1):
        for j in range(m + 1):
            for k in range(n * m + 1):
                if i and k >= j:  # an a placed last beats every b before it
                    ways[i][j][k] += ways[i - 1][j][k - j]
                if j:
                    ways[i][j][k] += ways[i][j - 1][k]
    total = sum(ways[n][m])
    centre = n * m / 2
    extreme = sum(count for k, count in enumerate(ways[n][m])
                  if abs(k - centre) >= abs(u - centre) - 1e-9)
    return u, extreme / total


def _merged(paths: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Comma-separated `--json` files (one run split over seeds) as one."""
    merged: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for path in paths.split(","):
        for name, methods in json.loads(Path(path).read_text()).items():
            for method, runs in methods.items():
                merged.setdefault(name, {}).setdefault(method, []).extend(runs)
    return merged


def compare(first: str, second: str) -> None:
    runs_a, runs_b = _merged(first), _merged(second)
    for name in [name for name in runs_a if name in runs_b]:
        direction = load_package(ROOT / "examples" / name).metric.direction
        (label_a, a), (label_b, b) = (next(iter(runs[name].items())) for runs in (runs_a, runs_b))
        best_a = [r["best"] for r in a if r["best"] is not None]
        best_b = [r["best"] for r in b if r["best"] is not None]
        if direction == "minimize":
            u, p = mann_whitney([-x for x in best_a], [-x for x in best_b])
        else:
            u, p = mann_whitney(best_a, best_b)
        pairs = len(best_a) * len(best_b)
        print(f"| {name} ({direction}) | {label_a} {spread(best_a)} (n={len(best_a)}) | "
              f"{label_b} {spread(best_b)} (n={len(best_b)}) | U={u:g} of {pairs}"
              f" (P[{label_a} better] = {u / pairs:.2f}), p={p:.3f} |")


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered):.4g} [{ordered[0]:.4g}, {ordered[-1]:.4g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", default=",".join(EXAMPLES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--retune", type=int, default=1)
    parser.add_argument("--space", default="ours", choices=SPACES,
                        help="tpe/random/cmaes: the search space (space_range)")
    parser.add_argument("--univariate", action="store_true",
                        help="tpe: independent TPE (optuna 5's default is multivariate)")
    parser.add_argument("--startup", type=int, default=10, help="tpe: n_startup_trials")
    parser.add_argument("--model-univariate", action="store_true",
                        help="after/model: the model's TPE per knob (model.MULTIVARIATE)")
    parser.add_argument("--whole-only", action="store_true",
                        help="after/model: every model proposal the whole suggestion")
    parser.add_argument("--no-joint", action="store_true",
                        help="after: the model's importance-chosen proposals only (model.JOINT)")
    parser.add_argument("--joint-prior", default=None, metavar="TRIES,WINS",
                        help="after/model: the whole suggestion's pseudo-counts "
                             "(model.JOINT_PRIOR)")
    parser.add_argument("--model-prior", default=None, metavar="TRIES,WINS",
                        help="after: the model family's pseudo-counts in the bandit "
                             "(Search.family_prior)")
    parser.add_argument("--credit", default=None, choices=("rank", "linear", "binary"),
                        help="after: what an improvement counts for in the family bandit "
                             "(memory.CREDIT)")
    parser.add_argument("--model-share", type=float, default=None,
                        help="after: share of proposals given to the model first "
                             "(search.MODEL_SHARE)")
    parser.add_argument("--families", default=FAMILY_NAMES,
                        type=lambda text: tuple(text.split(",")),
                        help="after: the operator families the bandit chooses among")
    parser.add_argument("--no-screen", action="store_true",
                        help="after: no switch screening (interaction.SCREEN)")
    parser.add_argument("--no-pairs", action="store_true",
                        help="after: no switch pairs toggled together (interaction.PAIRS)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--observations", type=int, default=1000)
    parser.add_argument("--compare", nargs=2, default=None, metavar="JSON[,JSON]",
                        help="two --json files (or comma-separated parts of one): medians and "
                             "a Mann-Whitney U test over seeds")
    args = parser.parse_args()
    if args.compare is not None:
        compare(*args.compare)
        return
    if args.latency:
        bench_latency(args.observations)
        return
    if args.no_joint:
        model_search.JOINT = False
    if args.whole_only:
        model_search.WHOLE_ONLY = True
    if args.no_pairs:
        interaction.PAIRS = False
    if args.no_screen:
        interaction.SCREEN = False
    if args.credit is not None:
        search_memory.CREDIT = args.credit
    if args.model_share is not None:
        family_search.MODEL_SHARE = args.model_share
    if args.model_univariate:
        model_search.MULTIVARIATE = False
    if args.joint_prior is not None:
        tries, wins = (float(part) for part in args.joint_prior.split(","))
        model_search.JOINT_PRIOR = (tries, wins)
    family_prior = None
    if args.model_prior is not None:
        tries, wins = (float(part) for part in args.model_prior.split(","))
        family_prior = {MODEL: (tries, wins)}
    runtime = load_runtime()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name in args.examples.split(","):
        problem = load_package(ROOT / "examples" / name)
        results[name] = {}
        with Evaluator(runtime, problem) as evaluator:
            baseline = evaluator.evaluate(baseline_files(problem)).score
            for method in args.methods.split(","):
                runs = []
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    start = time.perf_counter()
                    if method in ("before", "after", "model"):
                        families = {"before": (), "after": args.families,
                                    "model": (MODEL,)}[method]
                        run = trio.run(run_loop, problem, evaluator.evaluate, seed, args.budget,
                                       families, args.retune, family_prior)
                    else:
                        run = run_optuna(problem, evaluator.evaluate, seed, args.budget, method,
                                         args.space, not args.univariate, args.startup)
                    run["seconds"] = round(time.perf_counter() - start, 1)
                    runs.append(run)
                    print(f"# {name} {method} seed {seed}: {json.dumps(run)}", flush=True)
                results[name][method] = runs
            bests = {m: [r["best"] for r in runs if r["best"] is not None]
                     for m, runs in results[name].items()}
            cells = " | ".join(spread(v) if v else "-" for v in bests.values())
            print(f"| {name} ({problem.metric.direction}) | {baseline:.4g} | {cells} |",
                  flush=True)
    print(f"\n| example | baseline | {' | '.join(args.methods.split(','))} |")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
