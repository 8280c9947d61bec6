"""`swarm log` on a large history of a noise-gated problem (skill_landing_copy: it asks a model,
so every kept row is the noise gate's decision): a data directory whose store holds a few
thousand experiments, most of them peers' claims this node never replayed (unverified), some
its own. Times the changelog's rows as `swarm log` computes them now against the rule before
(the gate computed for every row, an unverified peer's too), in the same process, checks that
the rows a user is shown are the same, and times the whole command in-process.

    .venv/bin/python bench/bench_changelog.py [--experiments 3000] [--own 0.1] [--cases 10]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from node.identity import Identity, sign_record
from node.loop import step_status
from node.noise_gate import gated, judge
from node.problem import load_package
from node.report import changelog, changelog_tsv
from node.store import RecordStore
from research_dag import Experiment, Metric, Outcome, Problem

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "skill_landing_copy"


def changelog_before(
    experiments: Iterable[Experiment], metric: Metric,
    trusted: Callable[[Experiment], bool] = lambda experiment: True,
    problem: Problem | None = None,
) -> list[dict[str, Any]]:
    """node/report.py `changelog` as it was (commit 31c818e): the gate for every row."""
    experiments = list(experiments)
    built_on = {(e.parent, e.author) for e in experiments if e.parent is not None}
    rows: list[dict[str, Any]] = []
    best: float | None = None
    best_outcome: Outcome | None = None
    shows_gate = problem is not None and gated(problem)
    for experiment in experiments:
        outcome = experiment.outcome
        score = outcome.score if outcome.status == "ok" else None
        believed = trusted(experiment)
        decision = judge(problem, outcome, best_outcome) if problem is not None else None
        kept = believed and score is not None and (
            decision.kept if decision is not None else metric.better(score, best))
        if kept:
            best, best_outcome = score, outcome
        if not believed:
            status = "unverified"
        elif not experiment.parent:
            status = "baseline"
        elif (not kept and score is not None and score == best and decision is None
              and (experiment.id, experiment.author) in built_on):
            status = "drift"
        else:
            status = step_status(outcome, kept)
        rows.append({"commit": experiment.id[:10], "parent": (experiment.parent or "")[:10],
                     "score": score, "status": status,
                     "mutation_kind": experiment.mutation_kind,
                     "description": experiment.description, "fuel": outcome.fuel})
        if shows_gate:
            rows[-1]["gate"] = "" if decision is None else decision.describe()
    return rows


def _outcome(rng: random.Random, level: float, cases: int) -> Outcome:
    """An outcome whose `cases` cases each pass five checks with probability `level`."""
    if rng.random() < 0.05:
        return Outcome(status="crash", stderr_tail="Traceback: ValueError")
    verdicts = {f"case:{i:02d}": "".join("1" if rng.random() < level else "0" for _ in range(5))
                for i in range(1, cases + 1)}
    score = sum(v.count("1") for v in verdicts.values()) / (5 * cases)
    return Outcome(status="ok", score=score, strategy_fuel=rng.randrange(10**7, 10**8),
                   evaluator_fuel=rng.randrange(10**7, 10**8), details=verdicts)


def build(directory: Path, problem: Problem, count: int, own: float, cases: int) -> None:
    """A solo data directory (no identity: its experiments are 'local') that a swarm node
    also used: `own` of `count` experiments are its own, the rest 5 peers' claims."""
    rng = random.Random(7)
    peers = [Identity.from_seed(bytes([i + 1]) * 32) for i in range(5)]
    level, mine, theirs = 0.4, [], {p.peer_id: [] for p in peers}  # type: ignore[var-annotated]
    with RecordStore.open(directory / "records.sqlite") as store:
        store.add(problem)
        for index in range(count):
            level = min(0.95, level + rng.uniform(-0.002, 0.004))
            outcome = _outcome(rng, level, cases)
            files = {"SKILL.md": f"Write a blurb. Variant {index}.\n"}
            if rng.random() < own or not mine:
                parent = mine[-1].id if mine else None
                record = Experiment(problem=problem.id, parent=parent, strategy=files,
                                    outcome=outcome, mutation_kind="rewrite",
                                    description=f"attempt {index}", created_ms=index)
                mine.append(record)
            else:
                peer = rng.choice(peers)
                chain = theirs[peer.peer_id]
                parent = chain[-1].id if chain else mine[0].id
                signed = sign_record(Experiment(
                    problem=problem.id, parent=parent, strategy=files, outcome=outcome,
                    mutation_kind="rewrite", description=f"peer attempt {index}",
                    created_ms=index), peer)
                assert isinstance(signed, Experiment)
                record = signed
                chain.append(record)
            store.add(record)


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=3000)
    parser.add_argument("--own", type=float, default=0.1)
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from node.cli.run import _trusted

    problem = load_package(EXAMPLE)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        build(directory, problem, args.experiments, args.own, args.cases)
        with RecordStore.open(directory / "records.sqlite") as store:
            experiments = [r for r in store.iter_records(kind="experiment", problem=problem.id)
                           if isinstance(r, Experiment)]
            trusted = _trusted(store, directory)
        own = sum(1 for e in experiments if trusted(e))
        print(f"{len(experiments)} experiments ({own} own, {len(experiments) - own} peers' "
              f"unverified), {args.cases} cases each")
        before_s, before = _timed(
            lambda: changelog_before(experiments, problem.metric, trusted, problem), args.repeats)
        after_s, after = _timed(
            lambda: changelog(experiments, problem.metric, trusted, problem), args.repeats)
        tsv_s, tsv_rows = _timed(lambda: changelog(
            experiments, problem.metric, trusted, problem, gate_lines=False), args.repeats)
        assert isinstance(before, list) and isinstance(after, list)
        assert isinstance(tsv_rows, list)
        shown = [{k: v for k, v in row.items() if k != "gate"} for row in before]
        assert [{k: v for k, v in row.items() if k != "gate"} for row in after] == shown
        assert changelog_tsv(tsv_rows) == changelog_tsv(before)
        same_gate = all(a["gate"] == b["gate"] for a, b in zip(after, before, strict=True)
                        if a["status"] != "unverified")
        assert same_gate, "a gate line shown changed"
        print(f"rows (table, --json)   before {before_s * 1000:8.0f} ms   after "
              f"{after_s * 1000:8.0f} ms   ratio after/before {after_s / before_s:.3f}")
        print(f"rows (--tsv)           before {before_s * 1000:8.0f} ms   after "
              f"{tsv_s * 1000:8.0f} ms   ratio after/before {tsv_s / before_s:.3f}")
        print(f"per row: before {before_s / len(experiments) * 1000:.2f} ms, after "
              f"{after_s / len(experiments) * 1000:.2f} ms (table), "
              f"{tsv_s / len(experiments) * 1000:.3f} ms (tsv)")
        print("rows and gate lines shown: identical (every unverified row: no gate line now)")
        os.environ["SWARM_DATA_DIR"] = str(directory)
        from typer.testing import CliRunner

        from node.cli.main import app

        runner = CliRunner()
        for label, extra in (("swarm log", []), ("swarm log --tsv -", ["--tsv", "-"])):
            start = time.perf_counter()
            done = runner.invoke(app, ["log", problem.name, *extra])
            took = time.perf_counter() - start
            assert done.exit_code == 0, done.output
            print(f"{label:<22} whole command in-process (after): {took * 1000:.0f} ms")


if __name__ == "__main__":
    main()
