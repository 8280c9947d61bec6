"""The fixed evaluator: never mutated, never visible to the strategy."""

import json


def evaluate(output, public_dir, private_dir):
    with open(f"{private_dir}/expected.json", encoding="utf-8") as stream:
        expected = json.load(stream)
    if not isinstance(output, list) or len(output) != len(expected):
        return {"score": 0.0, "valid": False}
    correct = sum(1 for got, want in zip(output, expected) if got == want)
    return {"score": correct / len(expected), "details": {"correct": correct}}
