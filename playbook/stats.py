"""Exact and float statistics of success rates: P(one Beta posterior exceeds another) in rational
arithmetic, and credible intervals for a rate and for a difference of rates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from itertools import accumulate
from operator import mul, truediv

# A float P(X > Y) is within ~1e-9 of the exact value for every count this project sees (a sum of
# at most min(a1, b1, a2, b2) positive terms, each from lgamma and logs with relative error
# ~1e-10; tests/test_stats.py checks 1e-9). Comparisons farther than this from a threshold are
# decided by the float; nearer ones by the exact rational, so every node gets the same answer.
FLOAT_MARGIN = 1e-7
_LOG_TINY = -600.0  # exp() of this is ~1e-261: products of ratios stay normal floats
# Beta parameters up to which lgamma gives the first term's log within ~1e-10 (x log x ulps of
# 2**16 are ~1e-10), and how many factors it may sum instead past that.
LGAMMA_UP_TO = 2**16
FACTORS_UP_TO = 2**16


def prob_greater(a1: int, b1: int, a2: int, b2: int) -> Fraction:
    """Exactly P(X > Y) for independent X ~ Beta(a1, b1), Y ~ Beta(a2, b2), integer parameters.

    Evan Miller's closed form ("Formulas for Bayesian A/B testing") sums one term per unit of one
    parameter; by P(X > Y) = 1 - P(Y > X) and Beta(a, b) = 1 - Beta(b, a) any of the four can be
    that parameter, so the cost is about min(a1, b1, a2, b2) terms (at most 257 for counts of
    256), plus a first term of as many integer factors.
    """
    _check(a1, b1, a2, b2)
    count, flip, first, second = _cheapest(a1, b1, a2, b2)
    term0_num, term0_den, ratios = _terms(count, *first, *second)
    # sum_i prod_{j<i} r_j by Horner from the inside out, in integers: one gcd at the end.
    numerator, denominator = 1, 1
    for num, den in reversed(ratios):
        numerator, denominator = denominator * den + num * numerator, denominator * den
    value = Fraction(term0_num * numerator, term0_den * denominator)
    return 1 - value if flip else value


def prob_greater_float(a1: int, b1: int, a2: int, b2: int) -> float:
    """`prob_greater` in floats (within ~1e-9 of it): the same sum, in logs."""
    _check(a1, b1, a2, b2)
    count, flip, (_, beta_b), (alpha_a, beta_a) = _cheapest(a1, b1, a2, b2)
    log_term = _log_first_term(alpha_a, beta_a, beta_b)
    if log_term < _LOG_TINY:  # the first term underflows: carry the sum in logs
        terms = [math.exp(log_term)]
        for i in range(count - 1):
            log_term += (math.log(alpha_a + i) - math.log(alpha_a + beta_a + beta_b + i)
                         + math.log(beta_b + i) - math.log(i + 1))
            terms.append(math.exp(log_term))
    else:  # term[i + 1] = term[i] * (aA + i)(bB + i) / ((aA + bA + bB + i)(i + 1)), in C
        last, total = count - 1, alpha_a + beta_a + beta_b
        ratios = map(truediv,
                     map(mul, range(alpha_a, alpha_a + last), range(beta_b, beta_b + last)),
                     map(mul, range(total, total + last), range(1, count)))
        terms = list(accumulate(ratios, mul, initial=math.exp(log_term)))
    value = min(1.0, math.fsum(terms))
    return 1.0 - value if flip else value


def _log_first_term(alpha_a: int, beta_a: int, beta_b: int) -> float:
    """The log of Miller's first term B(alpha_A, beta_A + beta_B) / B(alpha_A, beta_A), <= 0.
    From lgamma while its arguments stay below LGAMMA_UP_TO (its error grows like x log x
    ulps: four values near 10**18 are ~4e19 each, and their difference was off by thousands,
    so exp() overflowed, or made a "probability" far from the exact one); else as the sum of
    the min(alpha_A, beta_B) factors `_terms` multiplies, as long as they are few."""
    factors = min(alpha_a, beta_b)
    if alpha_a + beta_a + beta_b <= LGAMMA_UP_TO or factors > FACTORS_UP_TO:
        return min(0.0, math.lgamma(beta_a + beta_b) - math.lgamma(beta_a)
                   - math.lgamma(alpha_a + beta_a + beta_b) + math.lgamma(alpha_a + beta_a))
    # Each factor is (beta_A + i) / (alpha_A + beta_A + i) or (beta_A + i) / (beta_A + beta_B
    # + i) (`_terms`).
    if beta_b <= alpha_a:
        return math.fsum(_log_ratio(beta_a + i, alpha_a + beta_a + i) for i in range(beta_b))
    return math.fsum(_log_ratio(beta_a + i, beta_a + beta_b + i) for i in range(alpha_a))


def _log_ratio(num: int, den: int) -> float:
    """log(num / den) for 0 < num <= den, precise near 1 (log1p of the gap) and far from it:
    int / int is correctly rounded however large the counts."""
    gap = (den - num) / den
    return math.log1p(-gap) if gap < 0.5 else math.log(num / den)


def compare_greater(a1: int, b1: int, a2: int, b2: int, threshold: Fraction,
                    approx: float | None = None) -> int:
    """The sign of P(X > Y) - threshold, exact: -1, 0 or 1. The float (`approx` if given, the
    caller's `prob_greater_float`) decides when it is farther than FLOAT_MARGIN from it."""
    if approx is None:
        approx = prob_greater_float(a1, b1, a2, b2)
    if approx > threshold + FLOAT_MARGIN:
        return 1
    if approx < threshold - FLOAT_MARGIN:
        return -1
    exact = prob_greater(a1, b1, a2, b2)
    return (exact > threshold) - (exact < threshold)


@dataclass(frozen=True)
class Lift:
    """Successes `s` of `n` attempts against `c` of `m` control attempts, uniform priors."""

    s: int
    n: int
    c: int
    m: int

    def __post_init__(self) -> None:
        if not (0 <= self.s <= self.n and 0 <= self.c <= self.m):
            raise ValueError(f"counts out of range: {self}")

    @property
    def params(self) -> tuple[int, int, int, int]:
        """Beta(1 + s, 1 + n - s) for the class, Beta(1 + c, 1 + m - c) for the control."""
        return 1 + self.s, 1 + self.n - self.s, 1 + self.c, 1 + self.m - self.c

    def probability(self) -> Fraction:
        """P(lift > 0) = P(p_class > p_control), exactly."""
        return prob_greater(*self.params)

    @cached_property
    def approx(self) -> float:
        """P(lift > 0) in floats (within ~1e-9); computed once."""
        return prob_greater_float(*self.params)

    def at_least(self, threshold: Fraction) -> bool:
        """P(lift > 0) >= threshold, exactly."""
        return compare_greater(*self.params, threshold, self.approx) >= 0

    def below(self, threshold: Fraction) -> bool:
        """P(lift > 0) < threshold, exactly."""
        return compare_greater(*self.params, threshold, self.approx) < 0

    def at_most(self, threshold: Fraction) -> bool:
        """P(lift > 0) <= threshold, exactly."""
        return compare_greater(*self.params, threshold, self.approx) <= 0

    def shown(self) -> str:
        """P(lift > 0) to three decimals, the same on every platform: from the float, unless
        that lies within reach of a rounding boundary (then from the exact value)."""
        scaled = self.approx * 1000
        if abs(scaled - math.floor(scaled) - 0.5) > 1e-4:
            return f"{self.approx:.3f}"
        return f"{float(self.probability()):.3f}"

    @property
    def cost(self) -> int:
        """Of the order of the terms computing P(lift > 0) takes (`prob_greater`)."""
        return min(self.s, self.n - self.s, self.c, self.m - self.c) + 1

    def estimate(self) -> float:
        """Posterior mean of the lift: (1 + s) / (2 + n) - (1 + c) / (2 + m), in that order."""
        return (1 + self.s) / (2 + self.n) - (1 + self.c) / (2 + self.m)


def rate_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Equal-tailed credible interval of a rate under a uniform prior: Beta(1 + k, 1 + n - k)."""
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes of {trials} trials")
    tail = (1.0 - level) / 2
    a, b = 1 + successes, 1 + trials - successes
    return beta_quantile(a, b, tail), beta_quantile(a, b, 1.0 - tail)


def difference_interval(
    s1: int, n1: int, s2: int, n2: int, level: float = 0.95
) -> tuple[float, float]:
    """Interval of rate1 - rate2 by Newcombe's MOVER recovery from the two rates' credible
    intervals around their posterior means (close to the posterior's own quantiles: see
    tests/test_stats.py; floats, for reports only)."""
    low1, high1 = rate_interval(s1, n1, level)
    low2, high2 = rate_interval(s2, n2, level)
    p1, p2 = (1 + s1) / (2 + n1), (1 + s2) / (2 + n2)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2)
    high = difference + math.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2)
    return max(-1.0, low), min(1.0, high)


def beta_quantile(a: float, b: float, q: float) -> float:
    """The q-quantile of Beta(a, b), by bisection on the regularised incomplete beta."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    low, high = 0.0, 1.0
    for _ in range(60):  # 2**-60: below float resolution near the answers we report
        middle = (low + high) / 2
        if beta_cdf(a, b, middle) < q:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def beta_cdf(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta I_x(a, b) (continued fraction, Numerical Recipes 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def _check(*params: int) -> None:
    for value in params:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Beta parameters are integers >= 1, not {value!r}")


Pair = tuple[int, int]


def _cheapest(a1: int, b1: int, a2: int, b2: int) -> tuple[int, bool, Pair, Pair]:
    """Which form of P(X > Y) sums fewest terms: (terms, take the complement, (alpha_B, beta_B),
    (alpha_A, beta_A)) for Miller's P(p_B > p_A), which sums alpha_B terms."""
    forms = (
        (a1, False, (a1, b1), (a2, b2)),  # P(X > Y)
        (a2, True, (a2, b2), (a1, b1)),  # 1 - P(Y > X)
        (b2, False, (b2, a2), (b1, a1)),  # P(1 - Y > 1 - X)
        (b1, True, (b1, a1), (b2, a2)),  # 1 - P(1 - X > 1 - Y)
    )
    # The first term is a product of min(alpha_A, beta_B) factors (`_terms`).
    return min(forms, key=lambda form: form[0] + min(form[3][0], form[2][1]))


def _terms(count: int, alpha_b: int, beta_b: int, alpha_a: int, beta_a: int
           ) -> tuple[int, int, list[tuple[int, int]]]:
    """Miller's first term B(alpha_A, beta_A + beta_B) / B(alpha_A, beta_A) as a numerator and a
    denominator, and the ratios term[i + 1] / term[i] for i < count - 1."""
    if beta_b <= alpha_a:  # Gamma ratios, as a product of beta_B factors ...
        numerator = math.perm(beta_a + beta_b - 1, beta_b)
        denominator = math.perm(alpha_a + beta_a + beta_b - 1, beta_b)
    else:  # ... or of alpha_A factors
        numerator = math.perm(alpha_a + beta_a - 1, alpha_a)
        denominator = math.perm(alpha_a + beta_a + beta_b - 1, alpha_a)
    ratios = [((alpha_a + i) * (beta_b + i), (alpha_a + beta_a + beta_b + i) * (i + 1))
              for i in range(count - 1)]
    return numerator, denominator, ratios
