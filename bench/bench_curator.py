"""Measures the playbook curator's `derive` on a DAG of many described experiments, as a ratio
against iterating the DAG's experiment headers once (and against loading every experiment).

    .venv/bin/python bench/bench_curator.py [--experiments 20000] [--repeat 3]

The problems carry the bundled examples' strategies (so hypotheses name real sites); every
attempt describes one or two changes drawn from its problem's affordances and succeeds with a
rate of its class; some test the hypotheses a first derivation made. In memory (no store).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playbook import strategy_affordances  # noqa: E402
from playbook.curator import derivation, derive, pattern_chains  # noqa: E402
from playbook.evidence import collect_evidence  # noqa: E402
from playbook.hypotheses import hypotheses_of, verdicts_of  # noqa: E402
from research_dag import (  # noqa: E402
    Change,
    Experiment,
    Metric,
    Outcome,
    Problem,
    Record,
    ResearchDag,
)


def _problems() -> list[Problem]:
    made = []
    for at, folder in enumerate(sorted((ROOT / "examples").iterdir())):
        strategy = folder / "strategy.py"
        if not strategy.exists():
            continue
        made.append(Problem(
            name=folder.name, statement=f"the {folder.name} example", domains=[folder.name],
            metric=Metric(name="score", direction="maximize"), mutable=["strategy.py"],
            files={"strategy.py": strategy.read_bytes()}, created_ms=at))
    return made


def _history(count: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    problems = _problems()
    records: list[Record] = list(problems)
    classes: dict[str, list[tuple[str, str]]] = {}
    scored: dict[str, list[tuple[str, float]]] = {}
    for problem in problems:
        files = {"strategy.py": problem.files["strategy.py"].decode()}
        sites = strategy_affordances(files)
        options = [(klass, site.site) for site in sites for klass in site.change_classes]
        # each problem's own search uses some of its classes: the others are left to transfer
        used = {klass for klass, _ in options if rng.random() < 0.6}
        classes[problem.id] = [(klass, site) for klass, site in options if klass in used]
        baseline = Experiment(problem=problem.id, strategy={"strategy.py": "# 0\n"},
                              outcome=Outcome(status="ok", score=0.0), created_ms=10)
        records.append(baseline)
        scored[problem.id] = [(baseline.id, 0.0)]
    rate = {klass: rng.choice((0.02, 0.08, 0.15, 0.3))
            for options in classes.values() for klass, _ in options}
    for t in range(count):
        problem = rng.choice(problems)
        options = classes[problem.id]
        picked = rng.sample(options, k=min(len(options), rng.choice((1, 2))))
        parent, parent_score = rng.choice(scored[problem.id][-50:])
        success = rng.random() < max(rate[klass] for klass, _ in picked)
        score = parent_score + (0.01 if success else -0.01)
        changes = [Change.model_validate({"operation": k.split(":")[0],
                                          "affordance": k.split(":")[1], "site": site})
                   for k, site in picked]
        experiment = Experiment(
            problem=problem.id, parent=parent, strategy={"strategy.py": f"# {t}\n"},
            mutation_kind=picked[0][0], outcome=Outcome(status="ok", score=score),
            changes=changes, created_ms=100 + t, author=f"node{rng.randrange(16)}")
        records.append(experiment)
        if success:
            scored[problem.id].append((experiment.id, score))
    return records


def _tests(dag: ResearchDag, seed: int) -> list[Record]:
    """Eight tests of each hypothesis a derivation makes now."""
    rng = random.Random(seed)
    made: list[Record] = []
    clock = 10**9
    for hypothesis in derivation(dag, _everything).hypotheses:
        parent = dag.experiment_headers(hypothesis.problem)[0]
        for i in range(8):
            clock += 1
            operation, affordance = hypothesis.mutation_kind.split(":")
            made.append(Experiment(
                problem=hypothesis.problem, parent=parent.id,
                strategy={"strategy.py": f"# test {clock}\n"},
                mutation_kind=hypothesis.mutation_kind, hypothesis_id=hypothesis.id,
                outcome=Outcome(status="ok", score=0.01 if rng.random() < 0.4 else -0.01),
                changes=[Change.model_validate({"operation": operation,
                                                "affordance": affordance,
                                                "site": (hypothesis.sites or ["x"])[0]})],
                created_ms=clock + i))
    return made


def _everything(experiment: Experiment) -> bool:
    return True


def _best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dag = ResearchDag(_history(args.experiments, seed=1))
    for record in _tests(dag, seed=2):
        dag.add(record)
    problems = [p.id for p in dag.problems()]
    experiments = sum(len(dag.experiment_headers(p)) for p in problems)

    def headers() -> None:
        for problem in problems:
            for _ in dag.experiment_headers(problem):
                pass

    def whole() -> None:
        for problem in problems:
            dag.experiments(problem)

    base = _best(args.repeat, headers)
    loading = _best(args.repeat, whole)
    evidence = collect_evidence(dag, _everything)
    collect = _best(args.repeat, lambda: collect_evidence(dag, _everything))
    chains_time = _best(args.repeat, lambda: pattern_chains(evidence))
    chains = pattern_chains(evidence)
    hypotheses = hypotheses_of(chains, evidence.problems)
    hypotheses_time = _best(args.repeat, lambda: hypotheses_of(chains, evidence.problems))
    verdicts_time = _best(args.repeat, lambda: verdicts_of(hypotheses, evidence))
    full = _best(args.repeat, lambda: derive(dag, _everything))
    made = derivation(dag, _everything)
    print(f"{experiments} experiments on {len(problems)} problems, {len(evidence.attempts)}"
          f" attempts counted; derived {sum(len(c) for c in made.chains.values())} pattern"
          f" snapshots of {len(made.chains)} classes, {len(made.hypotheses)} hypotheses,"
          f" {len(made.verdicts)} verdicts")
    print(f"iterate experiment headers once  {base * 1e3:9.1f} ms   1.0x")
    print(f"load every experiment            {loading * 1e3:9.1f} ms {loading / base:6.1f}x")
    print(f"derive                           {full * 1e3:9.1f} ms {full / base:6.1f}x")
    print(f"  collect evidence               {collect * 1e3:9.1f} ms {collect / base:6.1f}x")
    print(f"  pattern chains                 {chains_time * 1e3:9.1f} ms"
          f" {chains_time / base:6.1f}x")
    print(f"  hypotheses                     {hypotheses_time * 1e3:9.1f} ms")
    print(f"  verdicts                       {verdicts_time * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
