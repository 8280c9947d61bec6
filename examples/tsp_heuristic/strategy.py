"""A construction heuristic for the travelling salesman problem, as a priority function.

The harness starts at city 0 and, until every city is visited, calls
priority(current, unvisited, points, tour) and moves to the unvisited city with the highest
priority. `points` holds every city's (x, y) in the unit square, `unvisited` the indices still to
visit (in no particular order), `tour` the indices visited so far (tour[0] is the start, where
the tour ends). With only the first weight, this is the nearest-neighbour rule.
"""

import math

# What each feature adds to a city's priority (the highest is visited next).
WEIGHTS = [
    -1.0,  # distance from the current city (negative: nearer is better)
    0.0,  # distance from the start of the tour (positive: go far first, come back at the end)
    0.0,  # distance from the centre of the square (positive: the rim first)
]

_static = {}  # the features that do not depend on the current city, per instance and start


def priority(current, unvisited, points, tour):
    key = (id(points), tour[0])  # swarm: fixed
    static = _static.get(key)
    if static is None:
        sx, sy = points[tour[0]]
        static = [
            WEIGHTS[1] * math.hypot(x - sx, y - sy) + WEIGHTS[2] * math.hypot(x - 0.5, y - 0.5)
            for x, y in points
        ]
        _static.clear()
        _static[key] = static
    x, y = points[current]
    near = WEIGHTS[0]
    return [near * math.hypot(points[c][0] - x, points[c][1] - y) + static[c] for c in unvisited]
