"""Issue 14's rough edges, measured: neutral drift on a plateau (bench/packages/plateau_binpack),
distinct evaluations per iteration with and without redrawing repeats (the numeric examples),
and `swarm eval`'s start-up per candidate, one process per candidate vs one for all.

    .venv/bin/python bench/bench_rough_edges.py drift [--iterations 150] [--seeds 5]
        [--package plateau_binpack|plateau_binpack_near] [--rates 0 0.1 0.25 0.5]
        [--operators-only]
    .venv/bin/python bench/bench_rough_edges.py distinct [--iterations 50] [--seeds 3]
        [--operators-only]
    .venv/bin/python bench/bench_rough_edges.py eval [--candidates 10] [--repeat 3]

Each part compares against its baseline measured in the same process (drift 0, redraws 0,
separate processes); the loop runs in-process on real sandbox evaluations and a real store.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.loop import LoopConfig, LoopSummary, ResearchLoop  # noqa: E402
from node.mutators import OfflineMutator  # noqa: E402
from node.problem import load_package  # noqa: E402
from node.store import RecordStore  # noqa: E402
from sandbox import Evaluator, load_runtime  # noqa: E402

PACKAGES = ROOT / "bench" / "packages"  # plateau_binpack (wide) and plateau_binpack_near
NUMERIC = ("finance_factors", "tiny_training", "search_ranking", "faster_code")


def run_loop(package: Path, config: LoopConfig) -> LoopSummary:
    problem = load_package(package)
    with tempfile.TemporaryDirectory() as directory, \
            RecordStore.open(Path(directory) / "records.sqlite", durable=False) as store, \
            Evaluator(load_runtime(), problem) as evaluator:
        loop = ResearchLoop(problem, evaluator.evaluate, OfflineMutator(), store, config)
        return trio.run(loop.run)


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"median {statistics.median(ordered):.5g} "
            f"[{ordered[0]:.5g} .. {ordered[-1]:.5g}]")


def drift(arguments: argparse.Namespace) -> None:
    print(f"{arguments.package}, {arguments.iterations} iterations, "
          f"seeds 0..{arguments.seeds - 1}")
    for rate in arguments.rates:
        bests, kept, drifts, first = [], [], [], []
        for seed in range(arguments.seeds):
            config = LoopConfig(iterations=arguments.iterations, seed=seed, drift=rate,
                                stop_at_target=False)
            if arguments.operators_only:
                config = replace(config, families=())
            summary = run_loop(PACKAGES / arguments.package, config)
            assert summary.best_score is not None
            bests.append(summary.best_score)
            kept.append(summary.kept)
            drifts.append(summary.drifts)
            keeps = [s.iteration for s in summary.history if s.status == "keep"]
            first.append(keeps[0] if keeps else None)
        print(f"drift {rate:<4}: best {spread(bests)}; kept {kept}; drifts {drifts}; "
              f"first keep at {first}", flush=True)


def distinct(arguments: argparse.Namespace) -> None:
    for name in NUMERIC:
        for redraws in (0, LoopConfig().redraws):
            rows: list[tuple[int, int, float | None]] = []
            for seed in range(arguments.seeds):
                config = LoopConfig(iterations=arguments.iterations, seed=seed,
                                    redraws=redraws, stop_at_target=False)
                if arguments.operators_only:  # the offline operators alone, as before issue 14
                    config = replace(config, families=())
                summary = run_loop(ROOT / "examples" / name, config)
                rows.append((summary.evaluations, summary.redrawn, summary.best_score))
            print(f"{name:<16} redraws {redraws}: distinct {[r[0] for r in rows]} of "
                  f"{arguments.iterations}; redrawn {[r[1] for r in rows]}; "
                  f"best {[None if r[2] is None else round(r[2], 4) for r in rows]}", flush=True)


def swarm(*args: str) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds (user + system) and the --json output of one command."""
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args],
                          capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return time.perf_counter() - started, cpu, json.loads(done.stdout)


def eval_startup(arguments: argparse.Namespace) -> None:
    package = ROOT / "tests" / "fixtures" / "probe"
    source = (package / "strategy.py").read_text()
    with tempfile.TemporaryDirectory() as directory:
        files = []
        for n in range(arguments.candidates):
            files.append(Path(directory) / f"s{n}.py")
            files[-1].write_text(source.replace("SCALE = 0.5", f"SCALE = {0.5 + n / 10}"))
        for attempt in range(arguments.repeat):  # interleaved: load on this machine varies
            apart = [swarm("eval", str(package), "--strategy", str(f), "--json")
                     for f in files]
            wall, cpu, report = swarm("eval", str(package), "--json",
                                      *(a for f in files for a in ("--strategy", str(f))))
            assert len(report) == len(files)
            apart_wall, apart_cpu = sum(a[0] for a in apart), sum(a[1] for a in apart)
            count = len(files)
            print(f"attempt {attempt + 1}: {count} candidates; one process each: wall "
                  f"{apart_wall:.2f} s, CPU {apart_cpu:.2f} s ({apart_cpu / count:.3f} s a "
                  f"candidate); one process for all: wall {wall:.2f} s, CPU {cpu:.2f} s "
                  f"({cpu / count:.3f} s a candidate); CPU ratio {apart_cpu / cpu:.1f}x, "
                  f"start-up per call ~{(apart_cpu - cpu) / (count - 1):.3f} s CPU", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parts = parser.add_subparsers(dest="part", required=True)
    part = parts.add_parser("drift")
    part.add_argument("--iterations", type=int, default=150)
    part.add_argument("--seeds", type=int, default=5)
    part.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5])
    part.add_argument("--package", default="plateau_binpack",
                      choices=["plateau_binpack", "plateau_binpack_near"])
    part.add_argument("--operators-only", action="store_true",
                      help="LoopConfig(families=()): no model-based search, no bandit")
    part.set_defaults(run=drift)
    part = parts.add_parser("distinct")
    part.add_argument("--iterations", type=int, default=50)
    part.add_argument("--seeds", type=int, default=3)
    part.add_argument("--operators-only", action="store_true",
                      help="LoopConfig(families=()): no model-based search, no bandit")
    part.set_defaults(run=distinct)
    part = parts.add_parser("eval")
    part.add_argument("--candidates", type=int, default=10)
    part.add_argument("--repeat", type=int, default=3)
    part.set_defaults(run=eval_startup)
    arguments = parser.parse_args()
    arguments.run(arguments)


if __name__ == "__main__":
    main()
