"""The mutable strategy: the loop changes the literals below, one change at a time."""

import json

WEIGHTS = [1.0, 1.0, 1.0]  # one weight per input feature
THRESHOLD = 0.9


def solve(public_dir):
    """Read public inputs, return JSON-serialisable predictions."""
    with open(f"{public_dir}/inputs.json", encoding="utf-8") as stream:
        rows = json.load(stream)
    return [int(sum(w * x for w, x in zip(WEIGHTS, row)) > THRESHOLD) for row in rows]
