"""Checks each packing (one bin index per item, no bin over 150) and scores the bins used over
the instances' lower bounds (sum of sizes / 150, rounded up); lower is better."""

import json

CAPACITY = 150
WORST = 10.0


def evaluate(output, public_dir, private_dir):
    with open(private_dir + "/items.json") as stream:
        instances = json.load(stream)
    packings = output.get("packings") if isinstance(output, dict) else None
    if not isinstance(packings, list) or len(packings) != len(instances):
        return {"score": WORST, "valid": False, "details": {"error": "want one packing each"}}
    used = bound = 0
    for items, packing in zip(instances, packings):
        if not isinstance(packing, list) or len(packing) != len(items):
            return {"score": WORST, "valid": False, "details": {"error": "one bin per item"}}
        loads = {}
        for item, index in zip(items, packing):
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                return {"score": WORST, "valid": False, "details": {"error": "bad bin index"}}
            loads[index] = loads.get(index, 0) + item
        if any(load > CAPACITY for load in loads.values()):
            return {"score": WORST, "valid": False, "details": {"error": "a bin overflows"}}
        used += len(loads)
        bound += -(-sum(items) // CAPACITY)
    return {"score": used / bound, "details": {"bins": used, "lower_bound": bound}}
