"""Writes data/ for faster_code: ranges of integers (public) and their prime counts/sums (private).

Some ranges overlap, so remembering verdicts pays; one starts at 1 and one contains 2, so the
edge cases are checked. The expected answers come from a plain sieve here.
Deterministic; rerun with `python generate.py`.
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = [
    [1, 60],
    [2, 2],
    [90, 260],
    [500, 700],
    [600, 760],
    [961, 1030],
    [1200, 1320],
    [1250, 1300],
    [1600, 1690],
    [2000, 2060],
]


def sieve(limit):
    flags = [True] * (limit + 1)
    flags[0] = flags[1] = False
    for i in range(2, int(limit**0.5) + 1):
        if flags[i]:
            for j in range(i * i, limit + 1, i):
                flags[j] = False
    return flags


if __name__ == "__main__":
    flags = sieve(max(hi for _, hi in CASES))
    expected = []
    for lo, hi in CASES:
        primes = [n for n in range(lo, hi + 1) if flags[n]]
        expected.append([len(primes), sum(primes)])
    for path, value in ((HERE / "data" / "public" / "cases.json", CASES),
                        (HERE / "data" / "private" / "expected.json", expected)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value) + "\n", encoding="utf-8")
