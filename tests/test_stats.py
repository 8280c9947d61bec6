"""Tests of playbook.stats: exact P(one Beta exceeds another) against the textbook sum and Monte
Carlo, its symmetries, the float shortcut's accuracy, and the credible intervals."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from playbook.stats import (
    Lift,
    _cheapest,
    beta_cdf,
    beta_quantile,
    compare_greater,
    difference_interval,
    prob_greater,
    prob_greater_float,
    rate_interval,
)

params = st.integers(min_value=1, max_value=300)
small = st.integers(min_value=1, max_value=25)


def _beta(a: int, b: int) -> Fraction:
    return Fraction(math.factorial(a - 1) * math.factorial(b - 1), math.factorial(a + b - 1))


def _miller(a1: int, b1: int, a2: int, b2: int) -> Fraction:
    """Evan Miller's sum as written: P(X > Y), X ~ Beta(a1, b1), Y ~ Beta(a2, b2)."""
    return sum((_beta(a2 + i, b2 + b1) / ((b1 + i) * _beta(1 + i, b1) * _beta(a2, b2))
                for i in range(a1)), Fraction(0))


def test_known_values() -> None:
    assert prob_greater(1, 1, 1, 1) == Fraction(1, 2)
    assert prob_greater(2, 1, 1, 1) == Fraction(2, 3)  # P(max of 2 uniforms > a uniform)
    assert prob_greater(1, 2, 1, 1) == Fraction(1, 3)
    assert prob_greater(5, 5, 5, 5) == Fraction(1, 2)


@given(small, small, small, small)
@settings(max_examples=150, deadline=None)
def test_equals_the_textbook_sum(a1: int, b1: int, a2: int, b2: int) -> None:
    assert prob_greater(a1, b1, a2, b2) == _miller(a1, b1, a2, b2)


@given(params, params, params, params)
@settings(max_examples=150, deadline=None)
def test_symmetry_and_float(a1: int, b1: int, a2: int, b2: int) -> None:
    exact = prob_greater(a1, b1, a2, b2)
    assert exact + prob_greater(a2, b2, a1, b1) == 1  # continuous: ties have probability 0
    assert exact == 1 - prob_greater(b1, a1, b2, a2)  # 1 - X against 1 - Y
    assert 0 <= exact <= 1
    assert abs(prob_greater_float(a1, b1, a2, b2) - float(exact)) < 1e-9


counts_of_any_size = st.one_of(st.integers(1, 40), st.integers(2**16 - 40, 2**16 + 40),
                               st.integers(2**16, 10**18))


@given(counts_of_any_size, counts_of_any_size, counts_of_any_size, counts_of_any_size)
@settings(max_examples=300, deadline=None)
def test_the_float_is_within_1e_9_of_the_exact_value_at_any_size(a1: int, b1: int, a2: int,
                                                                  b2: int) -> None:
    """Counts reach 10**18 (a hypothesis's plan against a long history): lgamma's differences
    there were off by thousands, so exp() overflowed or the float shortcut decided against the
    exact value. Wherever the exact value is computable (few terms), the float agrees."""
    count, _, (_, beta_b), (alpha_a, _) = _cheapest(a1, b1, a2, b2)
    assume(count + min(alpha_a, beta_b) <= 200)
    exact = prob_greater(a1, b1, a2, b2)
    assert abs(prob_greater_float(a1, b1, a2, b2) - float(exact)) < 1e-9


@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200), st.integers(0, 200))
@settings(max_examples=150, deadline=None)
def test_monotone_in_successes(s: int, f: int, c: int, g: int) -> None:
    lift = Lift(s, s + f, c, c + g)
    more = Lift(s + 1, s + 1 + f, c, c + g)  # one more success
    worse = Lift(s, s + f + 1, c, c + g)  # one more failure
    richer_control = Lift(s, s + f, c + 1, c + g + 1)
    assert more.probability() > lift.probability() > worse.probability()
    assert richer_control.probability() < lift.probability()


@given(params, params, params, params, st.fractions(min_value=0, max_value=1))
@settings(max_examples=100, deadline=None)
def test_compare_is_exact(a1: int, b1: int, a2: int, b2: int, threshold: Fraction) -> None:
    exact = prob_greater(a1, b1, a2, b2)
    expected = (exact > threshold) - (exact < threshold)
    assert compare_greater(a1, b1, a2, b2, threshold) == expected
    # at the value itself the float cannot decide: the exact comparison does
    assert compare_greater(a1, b1, a2, b2, exact) == 0


@pytest.mark.parametrize("a1,b1,a2,b2", [(10, 5, 3, 20), (3, 7, 30, 90), (2, 2, 3, 3),
                                         (13, 247, 9, 121)])
def test_agrees_with_monte_carlo(a1: int, b1: int, a2: int, b2: int) -> None:
    rng = random.Random(11)
    draws = 40_000
    wins = sum(rng.betavariate(a1, b1) > rng.betavariate(a2, b2) for _ in range(draws))
    # 4 standard errors of a proportion at most 0.0025 each: 0.01
    assert abs(wins / draws - float(prob_greater(a1, b1, a2, b2))) < 0.01


def test_cost_is_bounded_by_the_smallest_parameter() -> None:
    """Counts of 256 and 256 give at most 257 terms; a huge parameter alone costs nothing."""
    assert 0 < prob_greater(257, 257, 257, 1) < 1
    assert prob_greater(1, 10**6, 1, 1) == Fraction(1, 10**6 + 1)


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        prob_greater(0, 1, 1, 1)
    with pytest.raises(ValueError):
        Lift(3, 2, 0, 0)


def test_lift_estimate_and_thresholds() -> None:
    lift = Lift(9, 14, 3, 40)
    assert lift.params == (10, 6, 4, 38)
    assert lift.estimate() == 10 / 16 - 4 / 42
    assert lift.at_least(Fraction(99, 100)) and not lift.below(Fraction(99, 100))
    assert Lift(0, 20, 10, 20).below(Fraction(1, 100))


@given(st.integers(1, 60), st.integers(1, 60), st.floats(0.01, 0.99))
@settings(max_examples=100, deadline=None)
def test_beta_cdf_matches_the_binomial_sum(a: int, b: int, x: float) -> None:
    """For integer parameters, I_x(a, b) = P(Binomial(a + b - 1, x) >= a)."""
    n = a + b - 1
    expected = math.fsum(math.comb(n, k) * x**k * (1 - x) ** (n - k) for k in range(a, n + 1))
    assert abs(beta_cdf(a, b, x) - expected) < 1e-9
    assert abs(beta_cdf(a, b, beta_quantile(a, b, 0.3)) - 0.3) < 1e-9


@pytest.mark.parametrize("s,n", [(0, 0), (3, 40), (9, 14), (50, 50)])
def test_rate_interval_matches_monte_carlo_quantiles(s: int, n: int) -> None:
    rng = random.Random(3)
    draws = sorted(rng.betavariate(1 + s, 1 + n - s) for _ in range(40_000))
    low, high = rate_interval(s, n)
    assert abs(low - draws[1_000]) < 0.01 and abs(high - draws[39_000]) < 0.01
    assert low < (1 + s) / (2 + n) < high


@pytest.mark.parametrize("s1,n1,s2,n2", [(9, 14, 3, 40), (4, 8, 30, 200), (0, 8, 5, 10),
                                         (120, 256, 40, 256)])
def test_difference_interval_is_close_to_the_posterior(s1: int, n1: int, s2: int, n2: int
                                                       ) -> None:
    rng = random.Random(5)
    draws = sorted(rng.betavariate(1 + s1, 1 + n1 - s1) - rng.betavariate(1 + s2, 1 + n2 - s2)
                   for _ in range(40_000))
    low, high = difference_interval(s1, n1, s2, n2)
    assert abs(low - draws[1_000]) < 0.03 and abs(high - draws[39_000]) < 0.03
