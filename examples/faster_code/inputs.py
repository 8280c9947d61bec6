"""Draws the ranges one candidate of faster_code is scored on (the package's fixed generator).

The host hands every candidate its own seed (from the problem id and the candidate's files), so
answers remembered from another run are worth nothing: they must be computed. Every draw has the
same shape, so candidates do nearly the same work: two edge cases, then four slots of two
overlapping ranges each (remembering verdicts across ranges pays), each slot starting at a
random offset within its band. A few lines of splitmix64 rather than `import random`: this runs
in the strategy's phase, and importing `random` would add ~8M fuel to every score.
"""

EDGE_CASES = [[1, 60], [2, 2]]  # 1 is not prime; 2 is the only even prime
# (start of the band, its width, length of each range): each slot starts within its band.
SLOTS = [(500, 100, 120), (1_500, 100, 90), (3_000, 100, 60), (4_500, 100, 40)]
MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def generate(seed, public_dir):
    state = seed & MASK
    cases = [list(case) for case in EDGE_CASES]
    for band, width, length in SLOTS:
        state, draw = splitmix64(state)
        lo = band + draw % width
        cases.append([lo, lo + length])
        shifted = lo + length // 2  # overlaps the first range by half
        cases.append([shifted, shifted + length])
    return cases
