"""The Research DAG views on a big store: `swarm dag`, `dag show`, `dag tree`, `playbook`,
`dag export` and `log --markdown`, each timed as a user runs it (in this process), against a
baseline measured in the same run: decoding every record of the store (what a view that loads
the whole DAG, as `swarm status` does, pays before it shows anything).

    .venv/bin/python bench/bench_dag_views.py [--experiments 20000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from node.cli import app
from node.problem import load_package
from node.store import RecordStore
from research_dag import (
    DERIVED_AUTHOR,
    MAX_LIST,
    Change,
    Experiment,
    Hypothesis,
    Outcome,
    Pattern,
    Problem,
    Record,
)

ROOT = Path(__file__).resolve().parent.parent
PRUNE = [Change(operation="prune", affordance="weight_vector", site="strategy.py:WEIGHTS[1]")]


def build(data: Path, count: int, seed: int) -> tuple[Problem, Pattern, Experiment]:
    """Two problems; `count` experiments in lineages about 1/4 deep of their count (each
    parent drawn among the newest 8 ok ones), a third failed; a pattern citing 256 of each
    list; a hypothesis on the second problem."""
    rng = random.Random(seed)
    first = load_package(ROOT / "tests" / "fixtures" / "probe")
    second = first.model_copy(update={"name": "probe-b", "seed": 8, "domains": ["finance"]})
    records: list[Record] = [first, second]
    experiments: dict[str, list[Experiment]] = {first.id: [], second.id: []}
    for at in range(count):
        problem = first if at % 4 else second
        pool = [e for e in experiments[problem.id][-8:] if e.outcome.status == "ok"]
        parent = rng.choice(pool) if pool else None
        failed = parent is not None and rng.random() < 0.33
        score = None if failed else (1.0 if parent is None else
                                     (parent.outcome.score or 0.0) + rng.uniform(-0.5, 0.6))
        experiment = Experiment(
            problem=problem.id, parent=None if parent is None else parent.id,
            strategy={"strategy.py": f"def solve(d):\n    return {{'x': {at}}}\n"},
            outcome=Outcome(status="crash") if score is None else Outcome(status="ok",
                                                                          score=score),
            mutation_kind="perturb", description=f"attempt {at}", created_ms=at + 1,
            changes=PRUNE if at % 3 == 0 else None)
        experiments[problem.id].append(experiment)
        records.append(experiment)
    ids = [e.id for e in experiments[first.id]]
    pattern = Pattern(mutation_kind="prune:weight_vector", operation="prune",
                      affordance="weight_vector", text="pruning helps",
                      supporting=ids[-MAX_LIST:], contradicting=ids[-2 * MAX_LIST:-MAX_LIST],
                      control=ids[-3 * MAX_LIST:-2 * MAX_LIST], problems=[first.id],
                      status="live", author=DERIVED_AUTHOR, created_ms=count + 1)
    hypothesis = Hypothesis(pattern=pattern.id, problem=second.id,
                            mutation_kind="prune:weight_vector", operation="prune",
                            affordance="weight_vector", text="pruning helps probe-b",
                            tries=8, author=DERIVED_AUTHOR, created_ms=count + 2)
    records += [pattern, hypothesis]
    with RecordStore.open(data / "records.sqlite", durable=False) as store:
        store.add_many(records)
    return first, pattern, experiments[first.id][-1]


def timed(*args: str) -> float:
    start = time.perf_counter()
    done = CliRunner().invoke(app, list(args))
    elapsed = time.perf_counter() - start
    if done.exit_code != 0:
        sys.exit(f"{args}: exit {done.exit_code}\n{done.output}\n{done.exception!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experiments", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        start = time.perf_counter()
        problem, pattern, last = build(data, options.experiments, options.seed)
        print(f"built {options.experiments:,} experiments in {time.perf_counter() - start:.1f} s")
        with RecordStore.open(data / "records.sqlite") as store:
            start = time.perf_counter()
            total = sum(1 for _ in store.iter_records())
            baseline = time.perf_counter() - start
        print(f"baseline     decode every record ({total:,})            {baseline:7.2f} s")
        d = ("--data-dir", str(data))
        views = [
            ("dag", ("dag", *d)),
            ("dag show (experiment)", ("dag", "show", last.id[:10], *d)),
            ("dag show (pattern)", ("dag", "show", pattern.id[:10], *d)),
            ("dag show (problem)", ("dag", "show", problem.id[:10], *d)),
            ("dag tree", ("dag", "tree", problem.id[:10], *d)),
            ("playbook", ("playbook", *d)),
            ("dag export json", ("dag", "export", "--format", "json", "-o",
                                 str(data / "dag.json"), *d)),
            ("log --json (before)", ("log", problem.id[:10], "--json", *d)),
            ("log --markdown", ("log", problem.id[:10], "--markdown", *d)),
        ]
        for name, args in views:
            seconds = timed(*args)
            print(f"{name:<24} {seconds:7.2f} s   {seconds / baseline:5.2f}x the baseline")


if __name__ == "__main__":
    main()
