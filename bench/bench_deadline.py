"""The wall-clock bound under a deliberately loaded host (issue 8 finding 5): how long an
evaluation whose strategy never stops takes, against its budget, while busy processes compete
for the cores.

    .venv/bin/python bench/bench_deadline.py [--busy 2] [--budgets 5 15] [--flood-budget 5]

Prints, per case, the time the evaluation took, the ratio to the budget and the overrun; the
sandbox promises budget + 1 s (sandbox.deadline.DEADLINE_SLACK_S) per phase on any load.
Uses only the public Evaluator API, so it also runs against an older checkout for comparison.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.problem import load_package  # noqa: E402
from research_dag import Budget  # noqa: E402
from sandbox import Evaluator, load_runtime  # noqa: E402

BOUND_S = 1.0
STRATEGIES = {
    "busy loop": "def solve(d):\n    while True:\n        pass\n",
    "random flood": "import os\n\ndef solve(d):\n    while True:\n        os.urandom(4 << 20)\n",
    "output flood": (
        "import os\n\ndef solve(d):\n    block = b'x' * (64 << 20)\n    while True:\n"
        "        os.write(1, block)\n"
    ),
}


def _evaluate(name: str, budget_s: float) -> float:
    problem = load_package(ROOT / "tests" / "fixtures" / "probe")
    problem = problem.model_copy(
        update={"budget": Budget(fuel=10**12, memory_mb=256, wall_s=budget_s)}
    )
    with Evaluator(load_runtime(), problem) as evaluator:
        started = time.monotonic()
        outcome = evaluator.evaluate({"strategy.py": STRATEGIES[name]})
        elapsed = time.monotonic() - started
    assert outcome.status == "timeout", outcome
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the run")
    parser.add_argument("--budgets", type=float, nargs="+", default=[5.0, 15.0])
    parser.add_argument("--flood-budget", type=float, default=5.0)
    args = parser.parse_args()
    load_runtime()  # compiled before the clock starts
    cases = [("busy loop", budget) for budget in args.budgets]
    cases += [("random flood", args.flood_budget), ("output flood", args.flood_budget)]
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
        for _ in range(args.busy)
    ]
    try:
        for name, budget in cases:
            elapsed = _evaluate(name, budget)
            verdict = "within" if elapsed <= budget + BOUND_S else "OVER"
            print(
                f"{name:13s} budget {budget:5.1f} s | ended after {elapsed:6.2f} s | ratio "
                f"{elapsed / budget:.3f}x | overrun {elapsed - budget:+.2f} s | {verdict} the "
                f"bound (budget + {BOUND_S:.0f} s) | {args.busy} busy processes"
            )
    finally:
        for process in busy:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
