"""The fixed evaluator: regenerates each instance's items, checks the packing (every item in a
bin, no bin over capacity) and scores bins used over a lower bound, averaged over the draw."""

import json
import math

import instances


def lower_bound(sizes, capacity, kind):
    volume = math.ceil(sum(sizes) / capacity)
    if kind == "volume":
        return volume
    return max(volume, sum(1 for size in sizes if size > capacity / 2))


def evaluate(output, public_dir, private_dir, drawn):
    with open(f"{private_dir}/scoring.json") as stream:
        kind = json.load(stream)["lower_bound"]
    if not isinstance(output, list) or len(output) != len(drawn):
        return {"score": 1e9, "valid": False}
    ratios = []
    for instance, packing in zip(drawn, output):
        sizes = instances.items(instance)
        if not isinstance(packing, list) or len(packing) != len(sizes):
            return {"score": 1e9, "valid": False}
        load = {}
        for size, where in zip(sizes, packing):
            if type(where) is not int:
                return {"score": 1e9, "valid": False}
            load[where] = load.get(where, 0) + size
        if any(total > instance["capacity"] for total in load.values()):
            return {"score": 1e9, "valid": False}
        ratios.append(len(load) / lower_bound(sizes, instance["capacity"], kind))
    # One case per instance (its index in the draw): the loop's noise gate pairs a candidate's
    # instance with its parent's instance of the same index.
    cases = {f"case:{index}": round(ratio, 6) for index, ratio in enumerate(ratios)}
    return {"score": sum(ratios) / len(ratios), "details": {"instances": len(ratios), **cases}}
