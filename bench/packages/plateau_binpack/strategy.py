"""Online bin packing: the items arrive in order and each goes to the open bin that wants it
most (priority), or to a new bin when none has room. The baseline is best fit."""

import json

CAPACITY = 150
TIGHTNESS = 1.0  # how much less room left after the item is wanted
PENALTY = 0.0  # priority lost for leaving a gap smaller than GAP (too small for any item)
GAP = 0.0


def priority(item, room):
    left = room - item
    return -TIGHTNESS * left - (PENALTY if 0 < left < GAP else 0.0)


def solve(public_dir):
    with open(public_dir + "/items.json") as stream:
        instances = json.load(stream)
    packings = []
    for items in instances:
        rooms, packing = [], []
        for item in items:
            best, target = None, -1
            for index, room in enumerate(rooms):
                if room >= item:
                    score = priority(item, room)
                    if best is None or score > best:
                        best, target = score, index
            if target < 0:
                rooms.append(CAPACITY)
                target = len(rooms) - 1
            rooms[target] -= item
            packing.append(target)
        packings.append(packing)
    return {"packings": packings}
