"""A hypothesis's prediction and test plan, written before it is tested: whether the source
problems' evidence agrees (the class beat the other changes on EACH of them, not only pooled),
the rate it predicts on the target, and how many tests decide it with a stated power
(docs/playbook.md, "Hypotheses")."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

from playbook.evidence import Snapshot
from playbook.stats import Lift


@dataclass(frozen=True)
class TestPlan:
    """How hypotheses are chosen, sized and decided (docs/playbook.md, "Thresholds" and
    "Hypotheses"; bench/measure_thresholds.py)."""

    __test__ = False  # not a pytest class, whatever its name

    tries: int = 8  # tests that decide a hypothesis whose record names no `tries` (older ones)
    shown_attempts: int = 4  # a problem with this many attempts of the class is no target
    confirm_p: Fraction = Fraction(95, 100)  # at `tries`: confirmed when P(tests' rate > base
    # rate) is at least this, else refuted
    early_tests: int = 4  # decided before `tries` only from this many tests on ...
    early_confirm_p: Fraction = Fraction(99, 100)  # ... confirmed when P is at least this
    refute_p: Fraction = Fraction(1, 100)  # ... refuted (negative transfer) when at most this
    # Sizing (`size`): the fewest tests, from `early_tests` to `max_tries`, that confirm the
    # predicted rate with probability `power`; none is made when `max_tries` tests would do it
    # with less than `min_power` (a plan likelier to refute a true lift than to confirm it).
    power: Fraction = Fraction(8, 10)
    min_power: Fraction = Fraction(1, 2)
    max_tries: int = 32  # tests come out of ordinary proposals (a quarter of a loop's): 32 is
    # 128 iterations of one node, past a solo run's budget, a few rounds of a swarm
    source_attempts: int = 4  # a scope problem with this many attempts of the class is a source
    # Source problems a prediction needs, each showing the lift: replication before transfer.
    # Over ten 16-node simulations the ten hypotheses from patterns shown on one problem alone
    # (finance's tuning directions, switch settings, a prune) were all refuted, two as negative
    # transfer (0 of 23 tests improving); the three from two or more were all confirmed
    # (bench/RESULTS.md, "Issue 11: replication before transfer", with ten fresh seeds).
    min_sources: int = 2
    base_prior: int = 8  # pseudo-attempts at the pattern's control rate in the target's base
    control_per_test: int = 3  # the target's control grows by this many attempts a test
    max_rate: Fraction = Fraction(19, 20)  # no prediction above this rate
    # A plan inconclusive at its size (P between `continue_p` and `confirm_p`) goes on to
    # `extend` times its tests (at most `max_tries`), deciding there at `extended_confirm_p`;
    # between the two looks only the early thresholds decide. A pattern goes live on a streak,
    # so the plan is sized for an overestimated lift: five 16-node simulations refuted six of
    # nine hypotheses whose tests beat their control at P = 0.83-0.91. Measured on the plan
    # simulator (bench/measure_plans.py --hypotheses 3000): true lifts confirmed 0.40 -> 0.49
    # (half the predicted lift) and 0.77 -> 0.85 (all of it), false confirmations 0.084 ->
    # 0.099, tests 13.9 -> 15.4.
    extend: int = 2
    continue_p: Fraction = Fraction(1, 2)
    extended_confirm_p: Fraction = Fraction(97, 100)

    def last(self, tries: int) -> int:
        """The most tests a plan of `tries` can take (an inconclusive one goes on)."""
        return max(tries, min(self.max_tries, tries * self.extend))


PLAN = TestPlan()


@dataclass(frozen=True)
class Prediction:
    """What a hypothesis predicts on its target and how it is tested."""

    base: Fraction  # the target's base rate, estimated when the hypothesis is made
    rate: Fraction  # the predicted success rate of its tests: base x the smallest source lift
    ratio: Fraction  # that lift: the smallest over the sources of (class rate / other rate)
    sources: int  # source problems (each with `source_attempts` attempts of the class)
    tries: int
    power: Fraction  # P(confirmed at `tries` tests) if the predicted rate is true

    @property
    def expected_lift(self) -> float:
        return float(self.rate - self.base)


def source_lifts(snapshot: Snapshot, plan: TestPlan = PLAN, target: str | None = None
                 ) -> dict[str, Fraction] | None:
    """Per source problem, the class's lift there (posterior means, Beta(1, 1) priors: (1 + s)
    / (2 + n) over (1 + c) / (2 + m)); None unless every source shows the class beating the
    other changes there (s / n > c / m) and there are `min_sources`. A scope problem with fewer
    than `source_attempts` attempts of the class, or no other attempts, is not a source; nor
    is `target` (a hypothesis's own target: its tests decide it, not this check)."""
    lifts: dict[str, Fraction] = {}
    for problem in sorted(snapshot.by_problem):
        s, n, c, m = snapshot.by_problem[problem]
        if n < plan.source_attempts or m == 0 or problem == target:
            continue
        if s * m <= c * n:
            return None
        lifts[problem] = Fraction(1 + s, 2 + n) / Fraction(1 + c, 2 + m)
    return lifts if len(lifts) >= plan.min_sources else None


def predict(snapshot: Snapshot, target: str, plan: TestPlan = PLAN) -> Prediction | None:
    """The prediction for `target` from a live snapshot, or None: sources disagree, the
    smallest lift is no lift, or no plan of at most `max_tries` tests has `min_power`."""
    lifts = source_lifts(snapshot, plan, target)
    if lifts is None:
        return None
    ratio = min(lifts.values())
    if ratio <= 1:
        return None
    lift = snapshot.lift
    pooled = Fraction(1 + lift.c, 2 + lift.m)  # the sources' other changes, posterior mean
    won, tried = snapshot.totals.get(target, (0, 0))
    base = (won + plan.base_prior * pooled) / (tried + plan.base_prior)
    rate = min(plan.max_rate, base * ratio)
    sized = size(base, rate, tried, plan)
    if sized is None:
        return None
    return Prediction(base, rate, ratio, len(lifts), *sized)


def size(base: Fraction, rate: Fraction, known: int, plan: TestPlan = PLAN
         ) -> tuple[int, Fraction] | None:
    """(tests, power): the fewest tests whose final verdict confirms `rate` against `base`
    with probability `plan.power`, else `max_tries` if that has `min_power`, else None. The
    control at the verdict is the target's `known` attempts and `control_per_test` more per
    test, at the base rate; early decisions are ignored (they end a plan sooner, seldom
    otherwise: bench/measure_thresholds.py)."""
    if rate <= base:
        return None
    found: tuple[int, Fraction] | None = None
    for tries in range(plan.early_tests, plan.max_tries + 1):
        control = known + plan.control_per_test * tries
        successes = math.floor(base * control + Fraction(1, 2))
        power = _power(tries, rate, successes, control, plan.confirm_p)
        found = (tries, power)
        if power >= plan.power:
            return found
    if found is not None and found[1] >= plan.min_power:
        return found
    return None


@functools.lru_cache(maxsize=8192)
def _power(tries: int, rate: Fraction, successes: int, control: int, confirm: Fraction
           ) -> Fraction:
    """P(k >= k*) for k ~ Binomial(tries, rate), k* the fewest successes of `tries` tests that
    confirm against `successes` of `control` (P(lift > 0) >= confirm), exactly."""
    low, high = 0, tries + 1  # the fewest k that confirms lies in [low, high]; high: none does
    while low < high:
        middle = (low + high) // 2
        if Lift(middle, tries, successes, control).at_least(confirm):
            high = middle
        else:
            low = middle + 1
    miss = 1 - rate
    return sum((math.comb(tries, k) * rate**k * miss**(tries - k)
                for k in range(low, tries + 1)), Fraction(0))
