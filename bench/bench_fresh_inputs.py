"""What fresh inputs do to faster_code's fuel metric: for strategies from the baseline to a sieve,
the spread of the score across candidates' draws (each variant differs by a comment, so by its
seed), as a ratio to the loop's 0.5 % gain threshold; and what memorising earns, before (fixed
inputs: tests/fixtures/faster_code_fixed) and after (each candidate's own draw).

    .venv/bin/python bench/bench_fresh_inputs.py [--draws 12]
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

from node.problem import baseline_files, load_package
from research_dag import Problem
from sandbox import Evaluator, load_runtime

ROOT = Path(__file__).parent.parent
FUEL_MIN_GAIN = 0.005
FLAGS = {
    "baseline": {},
    "break early": {"BREAK_EARLY": "True"},
    "break + sqrt": {"BREAK_EARLY": "True", "STOP_AT_SQRT": "True"},
    "every flag": {"BREAK_EARLY": "True", "STOP_AT_SQRT": "True", "SKIP_EVEN": "True",
                   "MEMOIZE": "True", "REPEATS": "1"},
}
SIEVE = '''
def solve(public_dir, cases=None):
    if cases is None:
        import json
        with open(f"{public_dir}/cases.json") as handle:
            cases = json.load(handle)
    top = max(hi for _, hi in cases)
    flags = bytearray([1]) * (top + 1)
    flags[0] = flags[1] = 0
    for i in range(2, int(top ** 0.5) + 1):
        if flags[i]:
            flags[i * i::i] = bytes(len(range(i * i, top + 1, i)))
    answers = []
    for lo, hi in cases:
        primes = [n for n in range(lo, hi + 1) if flags[n]]
        answers.append([len(primes), sum(primes)])
    return answers
'''


def with_flags(source: str, flags: dict[str, str]) -> str:
    for name, value in flags.items():
        source = re.sub(rf"^{name} = \S+", f"{name} = {value}", source, flags=re.MULTILINE)
    return source


def memorised(evaluator: Evaluator, problem: Problem) -> tuple[str, float | None]:
    output = evaluator.strategy_output({"strategy.py": SIEVE})
    assert output is not None
    literal = f"import json\n\ndef solve(*args):\n    return json.loads({output.decode()!r})\n"
    outcome = evaluator.evaluate({"strategy.py": literal})
    return outcome.status, outcome.score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=12, help="variants (draws) per strategy")
    args = parser.parse_args()
    runtime = load_runtime()
    problem = load_package(ROOT / "examples" / "faster_code")
    source = baseline_files(problem)["strategy.py"]
    strategies = {name: with_flags(source, flags) for name, flags in FLAGS.items()}
    strategies["sieve"] = SIEVE
    print(f"{'strategy':<14} {'mean fuel':>14} {'spread':>8} {'spread/gain':>11}")
    with Evaluator(runtime, problem) as evaluator:
        for name, strategy in strategies.items():
            fuels = []
            for draw in range(args.draws):
                outcome = evaluator.evaluate({"strategy.py": f"{strategy}\n# draw {draw}\n"})
                assert outcome.status == "ok", outcome
                fuels.append(outcome.strategy_fuel)
            mean = statistics.mean(fuels)
            spread = statistics.pstdev(fuels) / mean
            print(f"{name:<14} {mean:>14,.0f} {spread:>8.2%} {spread / FUEL_MIN_GAIN:>11.2f}")
        sieve = evaluator.evaluate({"strategy.py": SIEVE})
        fresh = memorised(evaluator, problem)
    fixed_problem = load_package(ROOT / "tests" / "fixtures" / "faster_code_fixed")
    with Evaluator(runtime, fixed_problem) as evaluator:
        fixed_sieve = evaluator.evaluate({"strategy.py": SIEVE})
        fixed = memorised(evaluator, fixed_problem)
    for label, (status, score), honest in (("fixed inputs", fixed, fixed_sieve.score),
                                           ("fresh inputs", fresh, sieve.score)):
        ratio = "-" if score is None or honest is None else f"{score / honest:.2f}"
        print(f"memorised sieve output, {label}: {status}, fuel {score}, vs the sieve: {ratio}")


if __name__ == "__main__":
    main()
