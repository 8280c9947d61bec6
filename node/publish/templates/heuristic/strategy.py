"""The mutable strategy: how much to want each bin the item fits in (the highest wins).

priority(item, rooms): `item` is the item's size, `rooms` the free space of every open bin it
fits in. This baseline is best fit: the fuller the bin after the item, the better.
"""

TIGHTNESS = 1.0  # weight of the room left after the item (negative sign below: less is better)


def priority(item, rooms):
    return [-TIGHTNESS * (room - item) for room in rooms]
