"""Checks faster_code's answers against the private expected ones (the score itself is fuel).

score = fraction of ranges answered exactly; valid only when every answer is exact, so a faster
but wrong strategy never counts.
"""

import json


def exact_pair(value):
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value))


def evaluate(output, public_dir, private_dir):
    with open(f"{private_dir}/expected.json") as handle:
        expected = json.load(handle)
    if not isinstance(output, list) or len(output) != len(expected):
        return {"score": 0.0, "valid": False, "details": {"error": "expected one pair per range"}}
    right = sum(exact_pair(got) and got == want for got, want in zip(output, expected, strict=True))
    return {
        "score": right / len(expected),
        "valid": right == len(expected),
        "details": {"ranges": len(expected), "wrong": len(expected) - right},
    }
