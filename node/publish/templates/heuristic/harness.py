"""The fixed harness: packs one instance by asking the strategy's function where each item goes.

It runs in the strategy's interpreter, so nothing here is trusted: the evaluator regenerates
the items and checks the packing itself. weight() is each instance's share of the fuel budget.
"""

import math

import instances


def weight(instance):
    return instance["items"]


def run(function, instance):
    """The bin of each item, in arrival order. Ties go to the bin with the most room."""
    capacity = instance["capacity"]
    rooms, packing = [], []
    for item in instances.items(instance):
        fits = [index for index, room in enumerate(rooms) if room >= item]
        if fits:
            scores = function(item, [rooms[index] for index in fits])
            if len(scores) != len(fits) or not math.isfinite(sum(scores)):
                raise ValueError("priority must return one finite number per bin that fits")
            best = max(scores)
            chosen = max((rooms[i], -i) for i, s in zip(fits, scores) if s == best)
            target = -chosen[1]
        else:
            rooms.append(capacity)
            target = len(rooms) - 1
        rooms[target] -= item
        packing.append(target)
    return packing
