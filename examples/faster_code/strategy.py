"""Counts the primes in each range [lo, hi] of `cases`, and sums them.

solve() returns [[count, sum], ...], one pair per range. Each candidate gets ranges of its own
(drawn by the package's inputs.py from a seed the host derives from the candidate's files), so
answers must be computed, not remembered. The evaluator only checks the answers; the score is
the fuel this function burns, so make it faster without changing a single answer.
"""

import math

REPEATS = 2  # compute everything this many times (a leftover from benchmarking)
BREAK_EARLY = False  # stop testing a number at its first divisor
STOP_AT_SQRT = False  # only try divisors up to the square root of n
SKIP_EVEN = False  # after 2, try odd divisors only
MEMOIZE = False  # remember each number's verdict across ranges
FIRST_DIVISOR = 2  # the smallest divisor tried (a larger one is faster, and wrong)


def upper(n):
    return math.isqrt(n) + 1 if STOP_AT_SQRT else n  # swarm: fixed


def is_prime(n):
    if n < 2:
        return False
    if SKIP_EVEN:
        if n % 2 == 0:  # swarm: fixed
            return n == 2  # swarm: fixed
        divisors = range(FIRST_DIVISOR + 1, upper(n), 2)  # swarm: fixed
    else:
        divisors = range(FIRST_DIVISOR, upper(n))
    prime = True  # swarm: fixed
    for d in divisors:
        if n % d == 0:  # swarm: fixed
            prime = False  # swarm: fixed
            if BREAK_EARLY:
                break
    return prime


def memoized(verdict):
    cache = {}

    def check(n):
        if n not in cache:
            cache[n] = verdict(n)
        return cache[n]

    return check


def solve(public_dir, cases):
    answers = []
    for _ in range(REPEATS):
        verdict = memoized(is_prime) if MEMOIZE else is_prime
        answers = []
        for lo, hi in cases:
            primes = [n for n in range(lo, hi + 1) if verdict(n)]  # swarm: fixed
            answers.append([len(primes), sum(primes)])  # swarm: fixed
    return answers
