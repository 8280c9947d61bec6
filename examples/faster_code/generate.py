"""Writes data/private/primes.json for faster_code: every prime the generator's ranges can reach,
which the evaluator uses to compute the expected answers of each candidate's ranges.

Deterministic; rerun with `python generate.py`.
"""

import json
from pathlib import Path

from inputs import SLOTS

HERE = Path(__file__).resolve().parent
LIMIT = max(band + width + length + length // 2 for band, width, length in SLOTS)


def sieve(limit):
    flags = [True] * (limit + 1)
    flags[0] = flags[1] = False
    for i in range(2, int(limit**0.5) + 1):
        if flags[i]:
            for j in range(i * i, limit + 1, i):
                flags[j] = False
    return flags


if __name__ == "__main__":
    primes = [n for n, prime in enumerate(sieve(LIMIT)) if prime]
    path = HERE / "data" / "private" / "primes.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"limit": LIMIT, "primes": primes}) + "\n", encoding="utf-8")
