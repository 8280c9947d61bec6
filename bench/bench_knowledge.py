"""Whether the swarm learns (issue 11, "Done means"), measured on the bundled problems.

    .venv/bin/python bench/bench_knowledge.py sim [--nodes 16] [--rounds 60] [--pose-every 20]
        [--problems finance_factors,credit_scoring,spam_filter,search_ranking] [--data-dir D]
    .venv/bin/python bench/bench_knowledge.py loo [--problems a,b,...] [--seeds 5]
        [--budget 80] [--source-seeds 2] [--source-iterations 60] [--pool pool.msgpack]
        [--held-out a,b] [--oracle] [--out loo.json]
    .venv/bin/python bench/bench_knowledge.py hypotheses sim.json loo.json ...
    .venv/bin/python bench/bench_knowledge.py cells --pool pool.msgpack [--problems a,b,...]
    .venv/bin/python bench/bench_knowledge.py browse --data-dir D  (sim's report on a kept store)

- sim: a 16-node simulation (in-memory network) over some bundled problems, posed one every
  `--pose-every` rounds in the order given, so the later ones can receive hypotheses from
  patterns learned on the earlier ones. Node 0 keeps its store in `--data-dir`; the bench
  derives from it with node 0's own evidence rule and reports patterns by status (class,
  evidence, P(lift > 0)), hypotheses by state, the DAG's size by kind and depth, and prints
  `swarm dag show` of one decided hypothesis's verdict.
- loo: bootstrap, leave-one-out. Each problem gets `--source-seeds` cold solo runs of
  `--source-iterations` (the pool). For each held-out problem P, a solo run on P (as `swarm
  run` does it: the curator on its store, derived again every 10 iterations) starts from a
  store holding the pool of the OTHER problems (warm) or nothing (cold), seeds 0..N-1, and
  stops at P's target: evaluations to target, median per problem; a run that never gets there
  counts as the budget and is flagged. Team goal: warm <= 0.5x cold. `--oracle` adds a third
  arm whose class weights come from P's own pool runs: the most a class prior could know.
- cells: on a pool (the runs `loo` keeps), each change class's and each cell's (a class with
  a qualifier: "toggle:switch/on") improving / attempts per problem and its lift over the
  problem's overall rate, and which carry lift (>= 1.5x) on at least two problems.
- hypotheses: confirmed / decided hypotheses against improving / attempts of the ordinary
  proposals on the same problems (from the JSON `--out` of the other parts), with 95 %
  intervals (playbook.rate_interval). Team goal: >= 2x.

Every evaluation is memoised per (problem, files) across runs in one process: evaluation is
deterministic, so the memo changes times, never results. Time on 2 shared cores: sim about 10
minutes; the pool 6 minutes once (then read from `--pool`); loo 2-6 minutes per held-out
problem (tiny_training about 15), so hold out a few at a time to stay under 15 minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge_arms import KINDS, Arm, family_arm, learn, summary  # noqa: E402  (bench/, beside this file)

from node.knowledge import CURATE_EVERY, NodeKnowledge, evidence_rule  # noqa: E402
from node.loop import LoopConfig, ResearchLoop, Step  # noqa: E402
from node.mutators import OfflineMutator  # noqa: E402
from node.problem import baseline_files, load_package  # noqa: E402
from node.store import RecordStore  # noqa: E402
from playbook import (  # noqa: E402
    BASE_RATE,
    Derivation,
    Knowledge,
    change_cells,
    class_weights,
    derivation,
    rate_interval,
    strategy_affordances,
)
from research_dag import (  # noqa: E402
    MAX_LIST,
    Experiment,
    Outcome,
    Pattern,
    Problem,
    Record,
    ResearchDag,
    decode_record,
    encode_record,
)
from sandbox import Evaluator, Runtime, load_runtime  # noqa: E402

EXAMPLES = ROOT / "examples"
SIM_PROBLEMS = "finance_factors,credit_scoring,spam_filter,search_ranking"
LOO_PROBLEMS = ("credit_scoring,faster_code,finance_factors,job_scheduling,landing_copy,"
                "search_ranking,spam_filter,tiny_training")
SOURCE_SEED = 1000  # pool runs use seeds from here, apart from the measured runs' 0..N-1


class Evaluations:
    """One evaluator per problem, memoised on (problem, files) for every run in the process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._evaluators: dict[str, Evaluator] = {}
        self._memo: dict[tuple[str, tuple[tuple[str, str], ...]], Outcome] = {}
        self._lock = threading.Lock()
        self.runs = 0

    def for_problem(self, problem: Problem) -> Callable[[Mapping[str, str]], Outcome]:
        evaluator = self._evaluators.get(problem.id)
        if evaluator is None:
            evaluator = self._evaluators[problem.id] = Evaluator(self.runtime, problem)

        def evaluate(files: Mapping[str, str]) -> Outcome:
            key = (problem.id, tuple(sorted(files.items())))
            with self._lock:
                known = self._memo.get(key)
            if known is None:
                known = evaluator.evaluate(files)
                with self._lock:
                    self._memo[key] = known
                    self.runs += 1
            return known

        return evaluate

    def close(self) -> None:
        for evaluator in self._evaluators.values():
            evaluator.close()


# ----- solo runs (leave-one-out) ------------------------------------------------------------


@dataclass
class Run:
    """One solo run on a problem: how long it took to reach the target, and its attempts."""

    problem: str
    seed: int
    arm: str  # cold, warm (the other problems' pool) or oracle (this problem's own classes)
    evaluations: int  # attempts made (the baseline not counted)
    to_target: int | None  # attempts until the best first met the target
    weighted_classes: dict[str, float] = field(default_factory=dict)  # class weights at start
    hypotheses_at_start: int = 0  # open hypotheses on this problem at the start
    ordinary: tuple[int, int] = (0, 0)  # (improved, attempts) without a hypothesis
    tests: tuple[int, int] = (0, 0)  # (improved, attempts) testing a hypothesis
    verdicts: dict[str, str] = field(default_factory=dict)  # hypothesis class -> result
    # hypothesis class -> [planned tests, predicted rate, target base rate] (playbook/power.py)
    plans: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def everything(experiment: Experiment) -> bool:
    """A solo run's evidence rule: every experiment in its store is its own."""
    return True


async def solo_run(problem: Problem, evaluations: Evaluations, seed: int, budget: int,
                   pool: list[Record], stop_at_target: bool = True,
                   fixed: Knowledge | None = None, setup: Arm | None = None,
                   arm_name: str | None = None, share: float | None = None
                   ) -> tuple[Run, list[Record]]:
    """A run as `swarm run` makes it, from a store holding `pool`: derive at the start, every
    CURATE_EVERY iterations and at the end (or, `fixed`, with that Knowledge throughout).
    `setup`: sets a prior on the loop's search before it runs (bench/knowledge_arms.py).
    Returns its measures and its records."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as tmp:
        store = RecordStore.open(Path(tmp) / "records.sqlite", durable=False)
        with store:
            store.add_many([*pool, problem])
            knowledge = NodeKnowledge(store.load_dag(cache=4096), everything)
            knowledge.curate()
            known = fixed or knowledge.for_problem(problem.id)
            weights, _ = class_weights(known, strategy_affordances(baseline_files(problem)))
            target_at: list[int] = []

            def step(done: Step, summary: Any) -> None:
                if done.iteration % CURATE_EVERY == 0:
                    knowledge.curate()
                best = summary.best_score
                if not target_at and best is not None and problem.metric.reached(best):
                    target_at.append(summary.iterations)

            def keep(experiment: Experiment) -> None:  # the loop stored it: index it too
                knowledge.dag.add(experiment)

            config = LoopConfig(iterations=budget, seed=seed,
                                target_streak=1 if stop_at_target else budget + 1)
            if share is not None:
                config = dataclasses.replace(config, hypothesis_share=share)
            loop = ResearchLoop(problem, evaluations.for_problem(problem), OfflineMutator(),
                                store, config, on_step=step, on_record=keep,
                                knowledge=lambda: fixed or knowledge.for_problem(problem.id))
            if setup is not None and loop.search is not None:
                setup(loop.search)
            summary = await loop.run()
            arm = arm_name or ("oracle" if fixed else "warm" if pool else "cold")
            run = Run(problem.name, seed, arm, summary.iterations,
                      target_at[0] if target_at else None, weights, len(known.hypotheses))
            mine = [r for r in store.iter_records(kind="experiment", problem=problem.id)
                    if isinstance(r, Experiment) and r.created_ms >= loop_start(pool)]
            measure_attempts(run, knowledge.dag, mine, problem)
            records: list[Record] = [problem, *mine]
    run.seconds = time.perf_counter() - started
    return run, records


def loop_start(pool: list[Record]) -> int:
    """This run's experiments are those newer than anything in its pool."""
    return 1 + max((r.created_ms for r in pool if isinstance(r, Experiment)), default=0)


def measure_attempts(run: Run, dag: ResearchDag, mine: list[Experiment], problem: Problem
                     ) -> None:
    """Improving / attempts of ordinary proposals and of hypothesis tests, and the verdicts
    this run's own derivation reached on hypotheses about its problem."""
    counts: dict[bool, list[int]] = {False: [0, 0], True: [0, 0]}
    for experiment in mine:
        if experiment.parent is None:
            continue
        tally = counts[experiment.hypothesis_id is not None]
        tally[0] += dag.is_finding(experiment)
        tally[1] += 1
    run.ordinary = (counts[False][0], counts[False][1])
    run.tests = (counts[True][0], counts[True][1])
    derived = derivation(dag, everything)
    about = {h.id: h for h in derived.hypotheses if h.problem == problem.id}
    run.verdicts = {about[v.hypothesis].mutation_kind or "?": v.result
                    for v in derived.verdicts if v.hypothesis in about}
    run.plans = {h.mutation_kind: [h.tries or 0, h.expected_lift or 0.0] for h in about.values()}


async def build_pool(problems: list[Problem], evaluations: Evaluations, seeds: int,
                     iterations: int) -> dict[str, list[Record]]:
    """Cold runs per problem that the other problems learn from (never stopping early)."""
    pool: dict[str, list[Record]] = {}
    for problem in problems:
        pool[problem.id] = []
        for seed in range(SOURCE_SEED, SOURCE_SEED + seeds):
            run, records = await solo_run(problem, evaluations, seed, iterations, [],
                                          stop_at_target=False)
            pool[problem.id] += records
            print(f"  pool {problem.name} seed {seed}: {run.evaluations} attempts, "
                  f"{run.ordinary[0]} improved, {run.seconds:.0f} s", flush=True)
    return pool


def save_pool(path: str, pool: dict[str, list[Record]]) -> None:
    encoded = {pid: [encode_record(r) for r in records] for pid, records in pool.items()}
    Path(path).write_bytes(msgpack.packb(encoded))


def load_pool(path: str, problems: list[Problem]) -> dict[str, list[Record]] | None:
    """The pool a previous run saved for these problems (their records), else None."""
    if not path or not Path(path).exists():
        return None
    encoded = msgpack.unpackb(Path(path).read_bytes())
    if set(encoded) != {p.id for p in problems}:
        return None
    print(f"  pool read from {path}", flush=True)
    return {pid: [decode_record(data) for data in records] for pid, records in encoded.items()}


def loo(args: argparse.Namespace) -> dict[str, Any]:
    runtime = load_runtime()
    evaluations = Evaluations(runtime)
    problems = [load_package(EXAMPLES / name) for name in args.problems.split(",")]
    held_out = [p for p in problems if not args.held_out or p.name in args.held_out.split(",")]
    try:
        print(f"pool: {args.source_seeds} cold runs x {args.source_iterations} attempts each",
              flush=True)
        pool = load_pool(args.pool, problems)
        if pool is None:
            pool = trio.run(build_pool, problems, evaluations, args.source_seeds,
                            args.source_iterations)
            if args.pool:
                save_pool(args.pool, pool)
        runs: list[Run] = []
        arms = args.arms.split(",") if args.arms else (
            ["cold", "warm", "oracle"] if args.oracle else ["cold", "warm"])
        for problem in held_out:
            others = [r for p in problems if p.id != problem.id for r in pool[p.id]]
            oracle = oracle_knowledge(problem, pool[problem.id]) if "oracle" in arms else None
            setups = kind_arms(arms, problem, problems, pool)
            for seed in range(args.seeds):
                for arm in arms:
                    run, _ = trio.run(solo_run, problem, evaluations, seed, args.budget,
                                      others if arm == "warm" else [], not args.no_stop,
                                      oracle if arm == "oracle" else None, setups.get(arm),
                                      arm, args.hypothesis_share)
                    runs.append(run)
                    print(f"  {problem.name} seed {seed} {arm}: "
                          f"target after {_shown(run.to_target, args.budget)}; "
                          f"{len(run.weighted_classes)} weighted classes, "
                          f"{run.hypotheses_at_start} hypotheses, verdicts {run.verdicts}; "
                          f"{run.seconds:.0f} s", flush=True)
    finally:
        evaluations.close()
    report = {"part": "loo", "budget": args.budget, "seeds": args.seeds,
              "runs": [asdict(run) for run in runs], "evaluations_run": evaluations.runs}
    print_loo(report)
    return report


def kind_arms(arms: list[str], problem: Problem, problems: list[Problem],
              pool: dict[str, list[Record]]) -> dict[str, Arm]:
    """The arms of bench/knowledge_arms.py KINDS asked for: "family" (an oracle: the held-out
    problem's own pool) or "xfamily" (a transfer: the other problems' pools), and so on;
    "family8": the family prior at 8 pseudo-attempts a family (40 by default)."""
    setups: dict[str, Arm] = {}
    for arm in arms:
        transfer = arm.startswith("x")
        kind = arm.removeprefix("x").rstrip("0123456789")
        if kind not in KINDS:
            continue
        sources = [p for p in problems if p.id != problem.id] if transfer else [problem]
        learned = learn([r for p in sources for r in pool[p.id]], sources)
        print(f"  {problem.name} {arm}: {summary(learned)}", flush=True)
        weight = arm.removeprefix("x")[len(kind):]
        setups[arm] = (family_arm(learned, float(weight)) if kind == "family" and weight
                       else KINDS[kind](learned))
    return setups


def _shown(to_target: int | None, budget: int) -> str:
    return f">{budget} (not reached)" if to_target is None else str(to_target)


def print_loo(report: dict[str, Any]) -> None:
    budget = report["budget"]
    runs = report["runs"]
    arms = list(dict.fromkeys(r["arm"] for r in runs))
    if "cold" in arms:
        arms.remove("cold")
    arms.insert(0, "cold")
    print(f"\nevaluations to target (median of {report['seeds']} seeds; a run that never got "
          f"there counts as {budget}, marked *)")
    print(f"{'held out':<16}" + "".join(f"{arm:>8}" for arm in arms)
          + "".join(f"{arm + '/cold':>13}" for arm in arms[1:]) + "   runs (" + " | ".join(arms)
          + ")")
    ratios: dict[str, list[float]] = {arm: [] for arm in arms[1:]}
    for name in dict.fromkeys(r["problem"] for r in runs):
        medians: dict[str, float] = {}
        shown = []
        for arm in arms:
            mine = [r for r in runs if r["problem"] == name and r["arm"] == arm]
            values = [budget if r["to_target"] is None else r["to_target"] for r in mine]
            medians[arm] = statistics.median(values) if values else float("nan")
            shown.append(" ".join(f"{budget}*" if r["to_target"] is None else str(r["to_target"])
                                  for r in mine))
        line = f"{name:<16}" + "".join(f"{medians[arm]:>8.1f}" for arm in arms)
        for arm in arms[1:]:
            ratio = medians[arm] / medians["cold"]
            ratios[arm].append(ratio)
            line += f"{ratio:>12.2f}x"
        print(line + "   " + " | ".join(shown))
    for arm, values in ratios.items():
        print(f"{arm}/cold, median over problems: {statistics.median(values):.2f}x"
              + (" (goal <= 0.5x)" if arm == "warm" else ""))


def oracle_knowledge(problem: Problem, records: list[Record]) -> Knowledge:
    """The best a class prior could know about `problem`: each class's and each cell's success
    rate on the problem's own pool runs, as live patterns against the pool's overall rate. Not
    transfer: the ceiling of what class and cell weights can do for the offline mutator here."""
    dag = ResearchDag(records)
    wins: dict[str, list[str]] = {}
    fails: dict[str, list[str]] = {}
    for experiment in dag.experiments(problem.id):
        if not isinstance(experiment, Experiment) or not experiment.changes:
            continue
        side = wins if dag.is_finding(experiment) else fails
        for klass in change_cells(experiment):
            side.setdefault(klass, []).append(experiment.id)
    total_wins = sum(len(ids) for ids in wins.values())
    total = total_wins + sum(len(ids) for ids in fails.values())
    patterns = []
    for klass in sorted(set(wins) | set(fails)):
        won, lost = wins.get(klass, []), fails.get(klass, [])
        operation, _, rest = klass.partition(":")
        affordance, _, qualifier = rest.partition("/")
        patterns.append(Pattern.model_validate({
            "mutation_kind": klass, "operation": operation, "affordance": affordance,
            "text": f"oracle: {klass} on {problem.name}", "supporting": won[-MAX_LIST:],
            "contradicting": lost[-MAX_LIST:], "success_rate": len(won) / (len(won) + len(lost)),
            "status": "live", "qualifier": qualifier or None}))
    base = total_wins / total if total else BASE_RATE
    return Knowledge(tuple(patterns), (), {p.id: base for p in patterns})


def cells(args: argparse.Namespace) -> dict[str, Any]:
    """Per class and per cell, improving / attempts on each problem of a pool, and the lift
    over the problem's overall rate: which qualifiers carry lift across problems."""
    problems = [load_package(EXAMPLES / name) for name in args.problems.split(",")]
    pool = load_pool(args.pool, problems)
    if pool is None:
        raise SystemExit(f"no pool for these problems in {args.pool!r}: run `loo --pool` first")
    names = {p.id: p.name for p in problems}
    table: dict[str, dict[str, list[int]]] = {}
    overall: dict[str, list[int]] = {}
    for pid, records in pool.items():
        dag = ResearchDag(records)
        for experiment in dag.experiments(pid):
            if not isinstance(experiment, Experiment) or experiment.parent is None:
                continue
            won = dag.is_finding(experiment)
            tally = overall.setdefault(names[pid], [0, 0])
            tally[0] += won
            tally[1] += 1
            keys = change_cells(experiment) if experiment.changes else ("(not described)",)
            if len(experiment.changes or ()) > 1:
                keys = (*keys, "(combined changes)")
            for key in keys:
                cell = table.setdefault(key, {}).setdefault(names[pid], [0, 0])
                cell[0] += won
                cell[1] += 1
    print("overall: " + ", ".join(f"{n} {w}/{t}" for n, (w, t) in sorted(overall.items())))
    rows = []
    for key in sorted(table):
        lifts = {}
        line = f"{key:<40}"
        for name in sorted(overall):
            won, tried = table[key].get(name, [0, 0])
            base = overall[name][0] / overall[name][1]
            lift = (won / tried) / base if tried and base else 0.0
            if tried:
                lifts[name] = lift
                line += f" {name[:10]:>10} {won:>3}/{tried:<3} {lift:4.1f}x"
            else:
                line += " " * 25
        carried = sorted(n for n, lift in lifts.items() if lift >= 1.5 and table[key][n][1] >= 3)
        print(line + (f"   lift on {len(carried)}" if len(carried) >= 2 else ""))
        rows.append({"cell": key, "by_problem": table[key], "lift_on": carried})
    return {"part": "cells", "overall": overall, "rows": rows}


# ----- the 16-node simulation -----------------------------------------------------------------


def sim(args: argparse.Namespace) -> dict[str, Any]:
    from node.sim import SimConfig, Simulation

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="bench-knowledge-sim-"))
    problems = tuple(load_package(EXAMPLES / name) for name in args.problems.split(","))
    config = SimConfig(nodes=args.nodes, problems=problems, rounds=args.rounds, seed=args.seed,
                       stop_at_target=False, pose_every=args.pose_every,
                       max_problems=len(problems), data_dir=data_dir)
    started = time.perf_counter()

    def on_round(index: int, simulation: Simulation) -> None:
        if index % 10 == 0:
            print(f"  round {index}: {time.perf_counter() - started:.0f} s, "
                  f"{simulation.history[-1]['evaluations']} evaluations", flush=True)

    result = trio.run(Simulation(config, load_runtime(), on_round=on_round).run)
    seconds = time.perf_counter() - started
    report = {"part": "sim", "seconds": seconds, "data_dir": str(data_dir),
              "simulator": result["knowledge"], **browse(data_dir)}
    print_sim(report, args)
    return report


def browse_only(args: argparse.Namespace) -> dict[str, Any]:
    """The report of `sim` on a store a simulation kept (`--data-dir`), without running one."""
    report = {"part": "sim", "seconds": 0.0, "data_dir": args.data_dir,
              **browse(Path(args.data_dir))}
    print_sim(report, args)
    return report


def browse(data_dir: Path) -> dict[str, Any]:
    """What node 0 derives from the store it kept, with its own evidence rule."""
    from node.identity import IDENTITY_FILE, load_or_create
    from node.leaderboard import headers_by_kind, ledger_from
    from node.sim.results import lineage_depth

    me = load_or_create(data_dir / IDENTITY_FILE).peer_id
    with RecordStore.open(data_dir / "records.sqlite") as store:
        dag = store.load_dag(cache=4096)
        counts = evidence_rule(dag, ledger_from(dag, me))
        derived = derivation(dag, counts)
        # What node 0 would store at its next curation (the run ended before it): so that
        # `swarm dag show` on the kept store shows the verdicts the evidence reached.
        new = [record for record in derived.records() if record.id not in dag]
        store.add_many(new)
        for record in new:
            dag.add(record)
        kinds = {kind: len(found) for kind, found in headers_by_kind(dag).items()}
        depth = {p.name: lineage_depth(dag.experiment_headers(p.id)) for p in dag.problems()}
        held = {p.id: p for p in dag.problems()}
        return {"patterns": pattern_rows(derived, held),
                "hypotheses": hypothesis_rows(derived, dag), "records": kinds, "depth": depth,
                "attempts": attempt_rates(derived, dag, counts)}


def pattern_rows(derived: Derivation, problems: Mapping[str, Problem]) -> list[dict[str, Any]]:
    rows = []
    for klass in sorted(derived.chains):
        snapshot = derived.chains[klass][-1]
        lift = snapshot.lift
        names = {pid: problems[pid].name for pid in snapshot.attempts_on if pid in problems}
        rows.append({"class": klass, "status": snapshot.pattern.status, "id": snapshot.pattern.id,
                     "successes": lift.s, "attempts": lift.n, "control_successes": lift.c,
                     "control": lift.m, "p_lift": lift.approx,
                     "problems": sorted(names.values())})
    return rows


def hypothesis_rows(derived: Derivation, dag: ResearchDag) -> list[dict[str, Any]]:
    verdicts = {v.hypothesis: v for v in derived.verdicts}
    open_ids = {h.id for h in derived.open_hypotheses()}
    names = {p.id: p.name for p in dag.problems()}
    rows = []
    for hypothesis in derived.hypotheses:
        verdict = verdicts.get(hypothesis.id)
        pattern = dag.get(hypothesis.pattern)
        sources = [names.get(p, p[:8]) for p in getattr(pattern, "problems", None) or ()]
        state = verdict.result if verdict else "open" if hypothesis.id in open_ids else "withdrawn"
        rows.append({"id": hypothesis.id, "class": hypothesis.mutation_kind, "state": state,
                     "target": names.get(hypothesis.problem, hypothesis.problem[:8]),
                     "sources": sources, "verdict": None if verdict is None else verdict.id,
                     "tries": hypothesis.tries, "expected_lift": hypothesis.expected_lift,
                     "verdict_text": None if verdict is None else verdict.text})
    return rows


def attempt_rates(derived: Derivation, dag: ResearchDag, counts: Callable[[Experiment], bool]
                  ) -> dict[str, Any]:
    """Improving / attempts of counted ordinary proposals and of hypothesis tests, on the
    problems some hypothesis targets."""
    targets = {h.problem for h in derived.hypotheses}
    tally = {"ordinary": [0, 0], "tests": [0, 0]}
    for problem_id in sorted(targets):
        for experiment in dag.records("experiment"):
            if not isinstance(experiment, Experiment) or experiment.problem != problem_id:
                continue
            if experiment.parent is None or not experiment.changes or not counts(experiment):
                continue
            side = tally["tests" if experiment.hypothesis_id else "ordinary"]
            side[0] += dag.is_finding(experiment)
            side[1] += 1
    return {"ordinary": tuple(tally["ordinary"]), "tests": tuple(tally["tests"])}


def print_sim(report: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\n{args.nodes} nodes, {args.rounds} rounds over {args.problems} (one posed every "
          f"{args.pose_every} rounds): {report['seconds']:.0f} s")
    print(f"node 0's store: {report['data_dir']}")
    statuses = Counter(row["status"] for row in report["patterns"])
    print(f"patterns by status: {dict(sorted(statuses.items()))}")
    for row in report["patterns"]:
        print(f"  {row['status']:<9} {row['class']:<24} {row['successes']:>4} of "
              f"{row['attempts']:>4} improved vs {row['control_successes']} of {row['control']}"
              f"  P(lift>0) = {row['p_lift']:.3f}  on {', '.join(row['problems'])}")
    states = Counter(row["state"] for row in report["hypotheses"])
    print(f"hypotheses by state: {dict(sorted(states.items()))}")
    for row in report["hypotheses"]:
        print(f"  {row['state']:<9} {row['class']:<24} {', '.join(row['sources'])} -> "
              f"{row['target']}" + (f": {row['verdict_text']}" if row["verdict_text"] else ""))
    print(f"records by kind: {report['records']}")
    print(f"depth (longest lineage) by problem: {report['depth']}")
    print(f"attempts on targeted problems: {report['attempts']}")
    # the hypothesis (node 0 stored it when it derived it; a verdict reached only at the end,
    # from the kept store, is not stored)
    decided = [row for row in report["hypotheses"] if row["verdict"]] or report["hypotheses"]
    if decided:
        shown_id = decided[0]["id"][:12]
        command = [str(Path(sys.executable).parent / "swarm"), "dag", "show", shown_id,
                   "--data-dir", report["data_dir"]]
        print(f"\n$ swarm dag show {shown_id} --data-dir {report['data_dir']}")
        shown = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                               env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"})
        print(shown.stdout or shown.stderr)


# ----- hypotheses against ordinary proposals -------------------------------------------------


def hypotheses(args: argparse.Namespace) -> dict[str, Any]:
    """Every prediction here is positive ("this change improves the target more than its other
    changes"): there are no avoidance (negative) predictions to report apart."""
    confirmed = decided = improved = attempts = tests_improved = tests = 0
    plans: list[int] = []
    for path in args.reports:
        report = json.loads(Path(path).read_text())
        if report["part"] == "sim":
            rows = report["hypotheses"]
            decided += sum(1 for row in rows if row["verdict"])
            confirmed += sum(1 for row in rows if row["state"] == "confirmed")
            improved += report["attempts"]["ordinary"][0]
            attempts += report["attempts"]["ordinary"][1]
            tests_improved += report["attempts"]["tests"][0]
            tests += report["attempts"]["tests"][1]
            plans += [row.get("tries") or 0 for row in rows]
        else:
            targeted = {r["problem"] for r in report["runs"] if r["verdicts"]}
            # the ordinary proposals of warm runs on problems with a decided hypothesis
            for run in report["runs"]:
                decided += len(run["verdicts"])
                confirmed += sum(1 for v in run["verdicts"].values() if v == "confirmed")
                plans += [int(plan[0]) for plan in run.get("plans", {}).values()]
                if run["problem"] in targeted and run["arm"] == "warm":
                    improved += run["ordinary"][0]
                    attempts += run["ordinary"][1]
                    tests_improved += run["tests"][0]
                    tests += run["tests"][1]
    rate = confirmed / decided if decided else 0.0
    base = improved / attempts if attempts else 0.0
    per_test = tests_improved / tests if tests else 0.0
    low, high = rate_interval(confirmed, decided)
    base_low, base_high = rate_interval(improved, attempts)
    test_low, test_high = rate_interval(tests_improved, tests)
    print(f"planned tests per hypothesis: {dict(sorted(Counter(plans).items()))}")
    print(f"positive predictions confirmed: {confirmed} of {decided} decided = {rate:.3f} "
          f"(95 % interval {low:.3f}..{high:.3f})")
    print(f"ordinary proposals improving on the same problems: {improved} of {attempts} = "
          f"{base:.3f} (95 % interval {base_low:.3f}..{base_high:.3f})")
    print(f"hypothesis tests improving, per proposal: {tests_improved} of {tests} = "
          f"{per_test:.3f} (95 % interval {test_low:.3f}..{test_high:.3f})")
    if base:
        print(f"confirmation rate / ordinary improvement rate: {rate / base:.2f}x (goal >= 2x); "
              f"tests' improvement rate / ordinary: {per_test / base:.2f}x")
    print("negative (avoidance) predictions: none are made")
    return {"part": "hypotheses", "confirmed": confirmed, "decided": decided,
            "improved": improved, "attempts": attempts, "tests_improved": tests_improved,
            "tests": tests, "plans": plans}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parts = parser.add_subparsers(dest="part", required=True)
    one = parts.add_parser("sim")
    one.add_argument("--nodes", type=int, default=16)
    one.add_argument("--rounds", type=int, default=60)
    one.add_argument("--pose-every", type=int, default=20)
    one.add_argument("--problems", default=SIM_PROBLEMS)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--data-dir", default=None)
    one.add_argument("--out", default=None)
    two = parts.add_parser("loo")
    two.add_argument("--problems", default=LOO_PROBLEMS)
    two.add_argument("--held-out", default="", help="only these (default: every problem)")
    two.add_argument("--seeds", type=int, default=5)
    two.add_argument("--budget", type=int, default=80)
    two.add_argument("--source-seeds", type=int, default=2)
    two.add_argument("--source-iterations", type=int, default=60)
    two.add_argument("--pool", default="", help="keep the pool's records in this file, and "
                     "read them from it when it holds the same problems")
    two.add_argument("--oracle", action="store_true", help="a third arm: class weights "
                     "from the held-out problem's own pool runs (the ceiling of class priors)")
    two.add_argument("--arms", default="", help="the arms, in order, from cold, warm, oracle "
                     "(class/cell), family, knobs, values (oracles of those kinds: the held-out "
                     "problem's own pool) and xfamily, xknobs, xvalues (from the other problems'"
                     " pools; a number after family sets its pseudo-attempts: family8); "
                     "default cold,warm[,oracle]")
    two.add_argument("--hypothesis-share", type=float, default=None, help="the loop's share "
                     "of proposals spent testing open hypotheses (LoopConfig: 0.25)")
    two.add_argument("--no-stop", action="store_true", help="run the whole budget (for the "
                     "hypotheses' tests), not stopping at the target")
    two.add_argument("--out", default=None)
    three = parts.add_parser("hypotheses")
    three.add_argument("reports", nargs="+")
    five = parts.add_parser("browse")
    five.add_argument("--data-dir", required=True)
    five.add_argument("--nodes", type=int, default=16)
    five.add_argument("--rounds", type=int, default=0)
    five.add_argument("--pose-every", type=int, default=0)
    five.add_argument("--problems", default=SIM_PROBLEMS)
    five.add_argument("--out", default=None)
    four = parts.add_parser("cells")
    four.add_argument("--pool", required=True)
    four.add_argument("--problems", default=LOO_PROBLEMS)
    four.add_argument("--out", default=None)
    args = parser.parse_args()
    parts_run = {"sim": sim, "loo": loo, "hypotheses": hypotheses, "cells": cells,
                 "browse": browse_only}
    report = parts_run[args.part](args)
    if getattr(args, "out", None):
        Path(args.out).write_text(json.dumps(report, indent=1, default=list))


if __name__ == "__main__":
    main()
