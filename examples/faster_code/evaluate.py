"""Checks faster_code's answers against ones computed from a private table of primes (the score
itself is fuel).

The ranges are this candidate's own (drawn by inputs.py from its seed and handed here too), so
the expected answers are computed now, never stored. score = fraction of ranges answered
exactly; valid only when every answer is exact, so a faster but wrong strategy never counts.
"""

import bisect
import json


def exact_pair(value):
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value))


def expected_answers(cases, primes):
    sums = [0]
    for prime in primes:
        sums.append(sums[-1] + prime)
    answers = []
    for lo, hi in cases:
        first, last = bisect.bisect_left(primes, lo), bisect.bisect_right(primes, hi)
        answers.append([last - first, sums[last] - sums[first]])
    return answers


def evaluate(output, public_dir, private_dir, cases):
    with open(f"{private_dir}/primes.json") as handle:
        table = json.load(handle)
    if max(hi for _, hi in cases) > table["limit"]:
        raise ValueError("the generator's ranges reach past the private prime table")
    expected = expected_answers(cases, table["primes"])
    if not isinstance(output, list) or len(output) != len(expected):
        return {"score": 0.0, "valid": False, "details": {"error": "expected one pair per range"}}
    right = sum(exact_pair(got) and got == want for got, want in zip(output, expected, strict=True))
    return {
        "score": right / len(expected),
        "valid": right == len(expected),
        "details": {"ranges": len(expected), "wrong": len(expected) - right},
    }
