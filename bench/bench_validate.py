"""What the publication checks cost: for each bundled example, the time of the whole validation
(`node.publish.validate_problem`) against one evaluation of its baseline, in the same process.

    .venv/bin/python bench/bench_validate.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from node.problem import baseline_files, load_package
from node.publish.validate import validate_problem
from sandbox import Evaluator, load_runtime

EXAMPLES = Path(__file__).parent.parent / "examples"
NAMES = ["landing_copy", "finance_factors", "search_ranking", "tiny_training", "faster_code"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args()
    runtime = load_runtime()
    print(f"{'example':<16} {'one eval s':>10} {'validate s':>10} {'evals':>6} {'ratio':>6}  ok")
    for name in NAMES:
        problem = load_package(EXAMPLES / name)
        files = baseline_files(problem)
        with Evaluator(runtime, problem) as evaluator:
            evaluator.evaluate(files)  # warm the compiled drivers, as validation finds them
            single = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                evaluator.evaluate(files)
                single.append(time.perf_counter() - start)
        whole = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            validation = validate_problem(runtime, problem)
            whole.append(time.perf_counter() - start)
        one, full = statistics.median(single), statistics.median(whole)
        print(f"{name:<16} {one:>10.2f} {full:>10.2f} {validation.evaluations:>6} "
              f"{full / one:>6.1f}  {validation.ok}")


if __name__ == "__main__":
    main()
