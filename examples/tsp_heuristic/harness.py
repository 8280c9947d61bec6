"""The fixed harness of tsp_heuristic: builds a tour of one instance by asking the strategy's
`priority` function, at every step, how much it wants each unvisited city next.

It runs in the strategy's interpreter, so nothing here is trusted: the evaluator regenerates the
cities and re-measures the tour itself. It only makes calls cheap and answers well-defined.
"""

import math

import instances


def weight(instance):
    """The instance's share of the fuel budget: a construction's work grows as n^2, and every
    run has a fixed cost besides (start-up, imports, drawing the cities)."""
    return instance["n"] ** 2 + 200_000


def run(function, instance):
    """The tour (a list of city indices) built by always moving to the unvisited city with the
    highest priority; ties go to the first of `unvisited` (an arbitrary order)."""
    points = instances.points(instance)
    current = 0
    tour = [0]
    unvisited = list(range(1, len(points)))
    while unvisited:
        scores = function(current, unvisited, points, tour)
        if len(scores) != len(unvisited):
            raise ValueError("priority must return one number per unvisited city")
        if not math.isfinite(sum(scores)):
            raise ValueError("priority returned a number that is not finite")
        index = scores.index(max(scores))
        current = unvisited[index]
        unvisited[index] = unvisited[-1]
        unvisited.pop()
        tour.append(current)
    return tour
