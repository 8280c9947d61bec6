"""Draws the instances one candidate is scored on (fixed): each is a count of items, a bin
capacity and the seed its item sizes are drawn from. The host derives `seed` from the problem
and the candidate's files, so no candidate knows its instances in advance. splitmix64 rather
than `import random` (~8M fuel a run)."""

COUNTS = [300, 300, 500, 500]  # items in each instance of a draw
CAPACITY = 150
SMALLEST, LARGEST = 20, 100
MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def generate(seed, public_dir):
    state = seed & MASK
    drawn = []
    for count in COUNTS:
        state, draw = splitmix64(state)
        drawn.append({"items": count, "capacity": CAPACITY, "seed": draw})
    return drawn


def items(instance):
    """The item sizes, in the order they arrive."""
    state, sizes = instance["seed"], []
    for _ in range(instance["items"]):
        state, draw = splitmix64(state)
        sizes.append(SMALLEST + draw % (LARGEST - SMALLEST + 1))
    return sizes
