"""Hypotheses' test plans sized by power (playbook/power.py) against the fixed 8 tests: false
confirmations, confirmations when the predicted lift is true, when only half of it is (a
pattern snapshot goes live on a lucky streak, so its lift is an overestimate), and tests used.

    .venv/bin/python bench/measure_plans.py [--hypotheses 400]

Each simulated hypothesis: a target with base rate b (0.1, 0.2 or 0.3) and 40 attempts of other
classes so far; a prediction of b + d (d = 0.1, 0.2, 0.3); tests drawn at the true rate, the
control growing by 3 attempts at rate b per test (a quarter of the proposals test it), judged
one by one by the verdict rule (playbook.decide) until decided or the plan's last look
(`TestPlan.last`: an inconclusive plan goes on to twice its tests; "no extension": it does not).
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playbook import PLAN, Lift, TestPlan, decide, size

BASES = (Fraction(1, 10), Fraction(2, 10), Fraction(3, 10))
LIFTS = (Fraction(1, 10), Fraction(2, 10), Fraction(3, 10))
KNOWN = 40


def run(plan: TestPlan, sized: bool, truth: str, count: int, seed: int) -> dict[str, float]:
    """Shares of confirmed / refuted / made among `count` hypotheses, and mean tests used."""
    rng = random.Random(seed)
    made = confirmed = refuted = used = 0
    for _ in range(count):
        base, lift = rng.choice(BASES), rng.choice(LIFTS)
        predicted = base + lift
        true = {"null": base, "half": base + lift / 2, "full": predicted}[truth]
        tries = plan.tries
        if sized:
            found = size(base, predicted, KNOWN, plan)
            if found is None:
                continue
            tries = found[0]
        made += 1
        c = sum(rng.random() < base for _ in range(KNOWN))
        m = KNOWN
        won = 0
        for done in range(1, plan.last(tries) + 1):
            won += rng.random() < true
            for _ in range(plan.control_per_test):
                c += rng.random() < base
                m += 1
            result = decide(Lift(won, done, c, m), tries, plan)
            if result is not None:
                confirmed += result == "confirmed"
                refuted += result == "refuted"
                used += done
                break
    return {"made": made / count, "confirmed": confirmed / max(1, made),
            "refuted": refuted / max(1, made), "tests": used / max(1, made)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hypotheses", type=int, default=400)
    count = parser.parse_args().hypotheses
    arms = {"fixed 8 tests": (replace(PLAN, extend=1), False),
            "sized, no extension": (replace(PLAN, extend=1), True),
            "sized (power 0.8, cap 32)": (PLAN, True),
            "sized, cap 16": (replace(PLAN, max_tries=16), True),
            "sized, cap 64": (replace(PLAN, max_tries=64), True)}
    print(f"{count} hypotheses per cell; base rates {[str(b) for b in BASES]}, predicted lifts "
          f"{[str(d) for d in LIFTS]}, target control {KNOWN} + 3 a test")
    print(f"{'plan':<28}{'made':>6}{'null: confirmed':>17}{'half: confirmed':>17}"
          f"{'full: confirmed':>17}{'tests (full)':>14}")
    for title, (plan, sized) in arms.items():
        null = run(plan, sized, "null", count, 1)
        half = run(plan, sized, "half", count, 2)
        full = run(plan, sized, "full", count, 3)
        print(f"{title:<28}{full['made']:>6.2f}{null['confirmed']:>17.3f}"
              f"{half['confirmed']:>17.3f}{full['confirmed']:>17.3f}{full['tests']:>14.1f}")


if __name__ == "__main__":
    main()
