"""Sandbox cost, as ratios against native baselines measured in the same process.

    .venv/bin/python bench/bench_sandbox.py [--repeat N]

1. fixed cost: one whole sandboxed evaluation (strategy phase + evaluator phase, fresh
   instance each) of a trivial strategy vs a native `python3 -c "print(1)"` subprocess;
2. compute: the same pure-Python workload sandboxed (fuel metering on) vs native, in-process;
3. host memory per running evaluation: guest linear memory plus the process RSS growth while
   two evaluations run at once.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.problem import load_package  # noqa: E402
from sandbox import Evaluator, Limits, load_runtime, run_guest  # noqa: E402

WORKLOAD = """
def work(n):
    total = 0
    table = {}
    for i in range(n):
        total += (i * i) % 7
        table[i % 1000] = total
    words = sorted(str(i) for i in range(n // 10))
    return total + len(words) + len(table)
"""
WORK_N = 300_000


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _native_subprocess(repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "print(1)"], check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return samples


def _sandboxed_evaluation(evaluator: Evaluator, strategy: str, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        outcome = evaluator.evaluate({"strategy.py": strategy})
        samples.append(time.perf_counter() - started)
        assert outcome.status == "ok", outcome
    return samples


def _native_compute(repeat: int) -> list[float]:
    namespace: dict[str, object] = {}
    exec(WORKLOAD, namespace)
    work = namespace["work"]
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work(WORK_N)  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return samples


def _sandboxed_compute(repeat: int) -> tuple[list[float], int]:
    runtime = load_runtime()
    limits = Limits(fuel=10**11, memory_bytes=256 << 20, wall_s=60)
    empty = WORKLOAD + "\nwork(0)\n"
    full = WORKLOAD + f"\nwork({WORK_N})\n"
    samples, fuel = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        run_guest(runtime, empty, [], limits)
        base = time.perf_counter() - started
        started = time.perf_counter()
        done = run_guest(runtime, full, [], limits)
        samples.append(time.perf_counter() - started - base)
        assert done.exit_code == 0 and done.trap is None, done
        fuel = done.fuel_used
    return samples, fuel


def _rss_bytes() -> int:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * 4096


def _memory_per_evaluation(evaluator: Evaluator, strategy: str) -> tuple[int, int]:
    """Peak RSS growth while two evaluations run at once, and the guest memory of one."""
    baseline = _rss_bytes()
    peak = baseline
    running = True

    def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [
        threading.Thread(target=evaluator.evaluate, args=({"strategy.py": strategy},))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    running = False
    sampler.join()
    guest = run_guest(
        evaluator.runtime,
        WORKLOAD + "\nwork(1000)\n",
        [],
        Limits(fuel=10**10, memory_bytes=256 << 20, wall_s=60),
    ).memory_bytes
    return (peak - baseline) // 2, guest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    problem = load_package(ROOT / "tests" / "fixtures" / "probe")
    strategy = (ROOT / "tests" / "fixtures" / "probe" / "strategy.py").read_text()
    runtime = load_runtime(progress=lambda message: print(message, file=sys.stderr))
    with Evaluator(runtime, problem) as evaluator:
        _sandboxed_evaluation(evaluator, strategy, 3)  # warm-up
        sandboxed = _median_ms(_sandboxed_evaluation(evaluator, strategy, args.repeat))
        native = _median_ms(_native_subprocess(args.repeat))
        native_compute = _median_ms(_native_compute(max(3, args.repeat // 4)))
        compute_samples, fuel = _sandboxed_compute(max(3, args.repeat // 4))
        sandbox_compute = _median_ms(compute_samples)
        per_eval_rss, guest_memory = _memory_per_evaluation(evaluator, strategy)
    print(
        f"fixed cost   sandboxed evaluation (2 phases) {sandboxed:7.1f} ms | native "
        f"`python -c print(1)` subprocess {native:7.1f} ms | ratio {sandboxed / native:.2f}x "
        "(goal <= 0.5x)"
    )
    print(
        f"compute      sandboxed (fuel on) {sandbox_compute:7.1f} ms | native in-process "
        f"{native_compute:7.1f} ms | ratio {sandbox_compute / native_compute:.2f}x "
        f"(goal <= 2.5x) | {fuel:,} fuel"
    )
    print(
        f"memory       host RSS growth per running evaluation {per_eval_rss / 2**20:.1f} MiB"
        f" | guest linear memory {guest_memory / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
