"""Measures the curator's thresholds on simulated histories (docs/playbook.md, "Thresholds"):
how often a pattern goes live or retires for good, null and harmful change classes, how soon,
how much it churns; and how often a hypothesis's verdict is right for a given test plan.

    .venv/bin/python bench/measure_thresholds.py [--seeds 40]

The histories are statistical, not evaluations: each attempt picks a problem, a class and an
author at random and succeeds with the class's rate on that problem. Seeded, so reproducible.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playbook.curator import LIFECYCLE, Lifecycle, pattern_chains
from playbook.evidence import Attempt, Evidence
from playbook.hypotheses import PLAN, TestPlan, decide
from playbook.stats import Lift
from research_dag import AFFORDANCES, Metric, Problem

BASE_RATES = (0.08, 0.15, 0.25)  # per problem: improving on the parent gets harder as search goes
# Per class: "good" adds 0.15 to the problem's rate, "null" keeps it, "bad" keeps 30 % of it.
EFFECTS = ("good", "good", "null", "null", "null", "null", "null", "null", "bad", "bad")
CLASSES = tuple(f"perturb:{affordance}" for affordance in AFFORDANCES[: len(EFFECTS)])
ATTEMPTS = 1500
AUTHORS = 4


def _problems() -> dict[str, Problem]:
    metric = Metric(name="s", direction="maximize")
    made = [Problem(name=f"p{i}", statement="simulated", metric=metric, mutable=["strategy.py"],
                    files={"strategy.py": b"X = 1\n"}, created_ms=i)
            for i in range(len(BASE_RATES))]
    return {p.id: p for p in made}


def _rate(effect: str, base: float) -> float:
    return {"good": base + 0.15, "null": base, "bad": base * 0.3}[effect]


def _history(seed: int, problems: dict[str, Problem]) -> Evidence:
    rng = random.Random(seed)
    ids = sorted(problems)
    attempts = []
    for t in range(ATTEMPTS):
        index = rng.randrange(len(ids))
        klass = rng.randrange(len(EFFECTS))
        success = rng.random() < _rate(EFFECTS[klass], BASE_RATES[index])
        author = f"n{rng.randrange(AUTHORS)}"
        attempts.append(Attempt((t, f"{seed:08x}{t:056x}"), ids[index], author,
                                (CLASSES[klass],), success, None))
    return Evidence(tuple(attempts), problems)


def measure_lifecycle(rules: Lifecycle, seeds: int) -> dict[str, float]:
    problems = _problems()
    ever: dict[tuple[str, str], int] = {}
    final: dict[tuple[str, str], int] = {}
    to_live: list[int] = []
    to_retire: list[int] = []
    snapshots: list[int] = []
    changes: list[int] = []
    for seed in range(seeds):
        chains = pattern_chains(_history(seed, problems), rules)
        for klass, chain in chains.items():
            effect = EFFECTS[CLASSES.index(klass)]
            statuses = [s.pattern.status or "" for s in chain]
            for status in set(statuses):
                ever[effect, status] = ever.get((effect, status), 0) + 1
            final[effect, statuses[-1]] = final.get((effect, statuses[-1]), 0) + 1
            snapshots.append(len(chain))
            changes.append(sum(a != b for a, b in itertools.pairwise(statuses)))
            if effect == "good" and "live" in statuses:
                to_live.append(chain[statuses.index("live")].lift.n)
            if effect == "bad" and "retired" in statuses:
                to_retire.append(chain[statuses.index("retired")].lift.n)
    per = {e: seeds * EFFECTS.count(e) for e in set(EFFECTS)}
    return {
        "good live at end": final.get(("good", "live"), 0) / per["good"],
        "good ever retired": ever.get(("good", "retired"), 0) / per["good"],
        "good: attempts to live (median)": statistics.median(to_live) if to_live else -1,
        "null ever live": ever.get(("null", "live"), 0) / per["null"],
        "null ever retired": ever.get(("null", "retired"), 0) / per["null"],
        "bad retired at end": final.get(("bad", "retired"), 0) / per["bad"],
        "bad ever live": ever.get(("bad", "live"), 0) / per["bad"],
        "bad: attempts to retired (median)": statistics.median(to_retire) if to_retire else -1,
        "snapshots per class (mean)": statistics.mean(snapshots),
        "status changes per class (mean)": statistics.mean(changes),
    }


def measure_plan(plan: TestPlan, seeds: int) -> dict[str, float]:
    """Sequential verdicts against a control of `m` attempts at base rate `b`."""
    outcomes: dict[str, list[str]] = {"null": [], "+0.15": [], "+0.30": [], "negative": []}
    used: list[int] = []
    rng = random.Random(7)
    for _ in range(seeds * 25):
        base = rng.choice((0.05, 0.1, 0.2, 0.3))
        m = rng.choice((40, 200))
        c = sum(rng.random() < base for _ in range(m))
        for case, rate in (("null", base), ("+0.15", base + 0.15), ("+0.30", base + 0.3),
                           ("negative", base * 0.2)):
            won = 0
            result = None
            for done in range(1, plan.tries + 1):
                won += rng.random() < rate
                result = decide(Lift(won, done, c, m), plan.tries, plan)
                if result is not None:
                    used.append(done)
                    break
            outcomes[case].append(result or "open")
    def share(case: str, result: str) -> float:
        return outcomes[case].count(result) / len(outcomes[case])
    return {
        "null confirmed (false)": share("null", "confirmed"),
        "+0.15 confirmed": share("+0.15", "confirmed"),
        "+0.30 confirmed": share("+0.30", "confirmed"),
        "negative refuted": share("negative", "refuted"),
        "tests used (mean)": statistics.mean(used),
    }


def _show(title: str, figures: dict[str, float]) -> None:
    print(f"{title}")
    for name, value in figures.items():
        print(f"    {name:<34} {value:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    seeds = parser.parse_args().seeds
    print(f"lifecycle: {seeds} histories of {ATTEMPTS} attempts, {len(EFFECTS)} classes "
          f"({EFFECTS.count('good')} good +0.15, {EFFECTS.count('bad')} bad x0.3), "
          f"base rates {BASE_RATES}")
    lifecycles = {
        "chosen": LIFECYCLE,
        "live_p 0.95": replace(LIFECYCLE, live_p=Fraction(95, 100)),
        "live_p 0.975": replace(LIFECYCLE, live_p=Fraction(975, 1000)),
        "live_p 0.999": replace(LIFECYCLE, live_p=Fraction(999, 1000)),
        "live_attempts 16": replace(LIFECYCLE, live_attempts=16),
        "no hysteresis (keep = live_p)": replace(LIFECYCLE, keep_live_p=LIFECYCLE.live_p),
        "keep_live_p 0.50": replace(LIFECYCLE, keep_live_p=Fraction(50, 100)),
        "retire 0.05 after 10": replace(LIFECYCLE, retire_p=Fraction(5, 100), retire_attempts=10),
    }
    for title, rules in lifecycles.items():
        _show(title, measure_lifecycle(rules, seeds))
    print(f"verdicts: {seeds * 25} hypotheses per case, base rates 0.05-0.3, control 40 or 200")
    plans = {
        "chosen": PLAN,
        "tries 4": replace(PLAN, tries=4),
        "tries 12": replace(PLAN, tries=12),
        "tries 16": replace(PLAN, tries=16),
        "confirm_p 0.90": replace(PLAN, confirm_p=Fraction(90, 100)),
        "confirm_p 0.99": replace(PLAN, confirm_p=Fraction(99, 100)),
        "early 0.95 / 0.05": replace(PLAN, early_confirm_p=Fraction(95, 100),
                                     refute_p=Fraction(5, 100)),
        "no early decision": replace(PLAN, early_tests=PLAN.tries),
    }
    for title, plan in plans.items():
        _show(title, measure_plan(plan, seeds))


if __name__ == "__main__":
    main()
