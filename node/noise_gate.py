"""The noise gate: whether a candidate beats the incumbent beyond noise, for scores a model's
varying outputs or per-candidate inputs make stochastic (packages with a `[model]` table or a
generator; docs/experiment-package.md).

Both outcomes are compared case by case (a paired comparison on the same cases): the evaluator
reports each case's verdicts as a detail `case:<id>`, either a string of "1"/"0" checks (samples
separated by spaces: the case's score is the share of "1") or a number. The gate keeps the
candidate only when a one-sided paired permutation test (sign-flip, Fisher-Pitman) over the
cases rejects "no better" at the stated confidence and the mean paired gain is positive. Under
"no better" each case's gain is as likely negative as positive, so the test counts the sign
assignments of the observed gains whose mean reaches the observed mean: exactly for up to
EXACT_PAIRS non-zero gains, else by the normal law with that distribution's moments. Ties (a
case scoring the same both times, as under a deterministic model) count for neither side.
Unlike a sign test it weighs how much each case gained, which gives it more power at the same
error rate (bench/bench_skill.py). It also states a bootstrap percentile interval for the mean
gain, drawn from a generator seeded by the two outcomes, so every node computes the same
decision and interval. With 10 cases, a change that helps 5 cases by the same amount and hurts
none has p = 1/32 and is kept at 95 %; one that helps 4 is not.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from research_dag import Metric, Outcome, Problem

__all__ = [
    "CASE_PREFIX", "DEFAULT_CONFIDENCE", "GateDecision", "case_scores", "gate", "gated", "judge",
]

CASE_PREFIX = "case:"
DEFAULT_CONFIDENCE = 0.95
RESAMPLES = 2000
MIN_CASES = 2
EXACT_PAIRS = 14  # 16,384 sign assignments at most; beyond, the normal approximation
MAX_CASES = 64  # cases compared (a peer's outcome may report up to 256 details)


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict on one candidate against the incumbent, with its evidence."""

    kept: bool
    cases: int  # cases both outcomes report
    wins: int
    losses: int
    mean_gain: float  # mean per-case gain in the metric's direction (positive: better)
    low: float  # the bootstrap interval of the mean gain
    high: float
    p_value: float  # one-sided paired permutation test of "the candidate is no better"
    confidence: float

    def describe(self) -> str:
        """One line for a changelog: the gain, its interval, the test and the verdict."""
        percent = f"{self.confidence * 100:.0f} %"
        verdict = ("kept" if self.kept
                   else "worse" if self.high < 0 else "within noise")
        return (
            f"gain {self.mean_gain:+.3f} [{self.low:+.3f}, {self.high:+.3f}] ({percent} "
            f"bootstrap, {self.cases} cases, {self.wins} up {self.losses} down); paired "
            f"permutation test p={self.p_value:.3g}: {verdict}"
        )


def _verdict_share(text: str) -> float | None:
    bits = [char for char in text[:4096] if char in "01"]
    if not bits or any(char not in "01 " for char in text[:4096]):
        return None
    return bits.count("1") / len(bits)


def case_scores(outcome: Outcome) -> dict[str, float]:
    """Each case's score from the outcome's `case:<id>` details (malformed ones are left out)."""
    scores: dict[str, float] = {}
    for key, value in outcome.details.items():
        if not key.startswith(CASE_PREFIX):
            continue
        if isinstance(value, str):
            share = _verdict_share(value)
        else:
            try:
                share = float(value)
            except OverflowError:  # an evaluator's 400-digit integer
                continue
        if share is not None and math.isfinite(share):
            scores[key] = share
    return scores


def _permutation_p(gains: list[float]) -> float:
    """P(a random sign assignment of the gains sums to at least their observed sum)."""
    sizes = [abs(gain) for gain in gains if gain != 0]
    if not sizes:
        return 1.0
    observed = sum(gains) - 1e-9 * max(sizes)  # equal sums must count despite rounding
    if len(sizes) <= EXACT_PAIRS:
        sums = [0.0]
        for size in sizes:  # every sign assignment's sum, one gain at a time
            sums = [total + signed for total in sums for signed in (size, -size)]
        return sum(1 for total in sums if total >= observed) / len(sums)
    # Beyond: the normal law with the permutation distribution's own moments (mean 0, variance
    # the sum of squared gains), which 15 or more terms follow closely.
    spread = math.sqrt(sum(size * size for size in sizes))
    return 0.5 * math.erfc(observed / spread / math.sqrt(2))


def _seed(candidate: dict[str, float], incumbent: dict[str, float]) -> int:
    material = repr((sorted(candidate.items()), sorted(incumbent.items()))).encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big")


def _interval(gains: list[float], confidence: float, seed: int) -> tuple[float, float]:
    if len(set(gains)) == 1:  # zero variance: every resample has the same mean
        return gains[0], gains[0]
    rng = random.Random(seed)
    count = len(gains)
    means = sorted(sum(rng.choices(gains, k=count)) / count for _ in range(RESAMPLES))
    tail = (1 - confidence) / 2
    low = means[max(0, math.floor(tail * RESAMPLES))]
    high = means[min(RESAMPLES - 1, math.ceil((1 - tail) * RESAMPLES) - 1)]
    return low, high


def gate(
    metric: Metric, candidate: Outcome, incumbent: Outcome,
    confidence: float = DEFAULT_CONFIDENCE,
) -> GateDecision | None:
    """The gate's decision, or None when the outcomes do not report at least MIN_CASES common
    cases (then the caller compares scores as for any package)."""
    if candidate.status != "ok" or candidate.score is None:
        return None
    mine, theirs = case_scores(candidate), case_scores(incumbent)
    common = sorted(set(mine) & set(theirs))[:MAX_CASES]
    if len(common) < MIN_CASES:
        return None
    sign = 1.0 if metric.direction == "maximize" else -1.0
    # Case values are any finite numbers an evaluator reports: 1e308 - (-1e308) is inf, and
    # a sum of inf gains made the test's p-value 0 (two cases kept a candidate) or 0.44 (six
    # equal gains of 1e308 rejected one). Such values are compared at a smaller exponent,
    # scaled by a power of two, which is exact: the test is the same, and no sum overflows.
    largest = max(abs(value) for key in common for value in (mine[key], theirs[key]))
    shift = math.frexp(largest)[1] if largest > _HUGE else 0
    gains = [sign * (math.ldexp(mine[key], -shift) - math.ldexp(theirs[key], -shift))
             for key in common]
    wins = sum(1 for gain in gains if gain > 0)
    losses = sum(1 for gain in gains if gain < 0)
    seed = _seed(mine, theirs)
    p_value = _permutation_p(gains)
    mean_gain = sum(gains) / len(gains)
    low, high = _interval(gains, confidence, seed)
    kept = (
        p_value <= 1 - confidence
        and mean_gain > 0
        and (incumbent.score is None or metric.better(candidate.score, incumbent.score))
    )
    mean_gain, low, high = (_unscaled(value, shift) for value in (mean_gain, low, high))
    return GateDecision(kept, len(common), wins, losses, mean_gain, low, high, p_value,
                        confidence)


_HUGE = 2.0**960  # beyond, 64 case values' differences and sums could overflow


def _unscaled(value: float, shift: int) -> float:
    """`value * 2**shift`, as inf (never OverflowError) when that is beyond floats."""
    half = shift // 2
    return value * 2.0**half * 2.0 ** (shift - half)


def gated(problem: Problem) -> bool:
    """Does the gate judge this package's candidates (it asks a model, or draws each
    candidate's inputs afresh)?"""
    return problem.model is not None or problem.generator is not None


def judge(
    problem: Problem, candidate: Outcome, incumbent: Outcome | None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> GateDecision | None:
    """The gate's decision for a package whose score varies from one evaluation to the next
    for reasons other than the change: it asks a model (a `[model]` table), or it draws each
    candidate's inputs afresh (a generator: a heuristic package's instances), so a candidate
    and its parent meet different cases. Under "no better", the paired gain of two independent
    draws of the same case (same id, e.g. the same instance size) is as likely negative as
    positive, so the sign-flip test holds there too. Only when both outcomes report their
    cases; None otherwise (the plain score comparison applies)."""
    if not gated(problem) or incumbent is None or incumbent.status != "ok":
        return None
    return gate(problem.metric, candidate, incumbent, confidence)
