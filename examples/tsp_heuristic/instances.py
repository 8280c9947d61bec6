"""Draws the cities one candidate of tsp_heuristic is scored on (the package's fixed generator).

The host hands every candidate its own seed (from the problem id and the candidate's files), so
no candidate can be tuned to, or carry tours for, the instances it will meet. Every draw has
the same sizes, so candidates are compared on instances of the same difficulty; only the
cities differ. A few lines of splitmix64 rather than `import random` (~8M fuel a run).
"""

SIZES = [100, 200, 300, 400, 500, 600, 800, 1000]  # cities in each instance of a draw
MASK = (1 << 64) - 1
UNIT = 1.0 / (1 << 53)


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def generate(seed, public_dir):
    """One instance per size: its number of cities and the seed its cities are drawn from."""
    state = seed & MASK
    instances = []
    for n in SIZES:
        state, draw = splitmix64(state)
        instances.append({"n": n, "seed": draw})
    return instances


def points(instance):
    """The instance's cities: n points drawn uniformly from the unit square."""
    state = instance["seed"]
    cities = []
    for _ in range(instance["n"]):
        state, a = splitmix64(state)
        state, b = splitmix64(state)
        cities.append(((a >> 11) * UNIT, (b >> 11) * UNIT))
    return cities
