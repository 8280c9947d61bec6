"""Tests of hypotheses' predictions and test plans (playbook/power.py): a hypothesis is made
only where every source problem shows the lift and a plan of at most `max_tries` tests can
decide it; the plan is the fewest tests with the stated power."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st
from playbook_history import History, everything, make_problem

from playbook.curator import derivation
from playbook.power import PLAN, predict, size, source_lifts

PRUNE = "prune:weight_vector"
PERTURB = "perturb:constant"


def _history(credit_prune: tuple[int, int], credit_other: tuple[int, int]) -> History:
    """prune:weight_vector on credit (first) and finance (second, two authors); search has a
    weight vector and has never been pruned."""
    history = History([make_problem("credit", domains=["credit"], at=1),
                       make_problem("finance", domains=["finance"], at=2),
                       make_problem("search", domains=["search"], at=3)])
    history.attempts("credit", PERTURB, *credit_other)
    history.attempts("credit", PRUNE, *credit_prune)
    history.attempts("finance", PERTURB, 3, 37)
    history.attempts("finance", PRUNE, 9, 5, authors=("a", "b"))
    history.attempts("search", PERTURB, 4, 36)
    return history


def test_sources_that_agree_make_a_hypothesis() -> None:
    history = _history((3, 3), (5, 25))
    found = derivation(history.dag(), everything)
    # live on credit's evidence while finance had few attempts: one source problem makes no
    # prediction for finance; credit and finance together make one for search
    assert {h.problem for h in found.hypotheses} == {history.problems["search"].id}
    for hypothesis in found.hypotheses:
        [snapshot] = [s for s in found.chains[PRUNE] if s.pattern.id == hypothesis.pattern]
        lifts = source_lifts(snapshot)
        assert lifts is not None and all(lift > 1 for lift in lifts.values())
        assert f"each of its {len(lifts)} source problem(s)" in hypothesis.text


def test_a_lift_shown_on_one_problem_is_that_problems_and_makes_no_hypothesis() -> None:
    """A prediction needs two source problems showing the lift (`min_sources`): over ten
    16-node simulations the ten hypotheses from a pattern shown on finance alone (a tuning
    direction, a switch setting, a prune) were all refuted, two of them with none of their 23
    tests improving (negative transfer), and the three from two or more sources were all
    confirmed (bench/RESULTS.md, "Issue 11:
    replication before transfer")."""
    history = History([make_problem(name, at=at) for at, name in
                       enumerate(("credit", "finance", "search"))])
    history.attempts("finance", PERTURB, 3, 37)
    history.attempts("finance", PRUNE, 9, 5, authors=("a", "b"))  # live, on finance alone
    history.attempts("credit", PERTURB, 4, 36)
    history.attempts("search", PERTURB, 4, 36)
    found = derivation(history.dag(), everything)
    assert any(s.pattern.status == "live" for s in found.chains[PRUNE])
    assert found.hypotheses == []
    one = dataclasses.replace(PLAN, min_sources=1)  # the rule before: one each for the others
    snapshot = next(s for s in found.chains[PRUNE] if s.pattern.status == "live")
    assert all(predict(snapshot, history.problems[name].id, one) is not None
               for name in ("credit", "search"))


def test_a_source_that_disagrees_makes_none_though_the_pooled_pattern_is_live() -> None:
    # credit: pruning 2 of 6 against 15 of 30 for its other changes (a lift below 1 there)
    found = derivation(_history((2, 4), (15, 15)).dag(), everything)
    assert any(s.pattern.status == "live" for s in found.chains[PRUNE])
    assert found.hypotheses == []


def test_a_lift_too_small_to_decide_makes_none() -> None:
    assert size(Fraction(3, 10), Fraction(33, 100), 40) is None  # +0.03 on 0.3: hundreds
    tries, power = size(Fraction(3, 10), Fraction(7, 10), 40) or (0, Fraction(0))
    assert PLAN.early_tests <= tries < PLAN.max_tries and power >= PLAN.power


def test_no_prediction_at_or_below_the_base_rate() -> None:
    assert size(Fraction(3, 10), Fraction(3, 10), 40) is None
    assert size(Fraction(3, 10), Fraction(1, 10), 40) is None


rates = st.fractions(min_value=Fraction(1, 50), max_value=Fraction(7, 10), max_denominator=50)


@settings(max_examples=40, deadline=None)
@given(base=rates, lift=st.fractions(min_value=Fraction(1, 20), max_value=Fraction(1, 2),
                                     max_denominator=20),
       known=st.integers(min_value=0, max_value=200))
def test_the_plan_is_the_fewest_tests_with_the_power(base: Fraction, lift: Fraction,
                                                      known: int) -> None:
    rate = min(PLAN.max_rate, base + lift)
    sized = size(base, rate, known)
    if sized is None:  # not even max_tries tests have min_power
        return
    tries, power = sized
    assert PLAN.early_tests <= tries <= PLAN.max_tries and power >= PLAN.min_power
    if power < PLAN.power:
        assert tries == PLAN.max_tries
    elif tries > PLAN.early_tests:  # one test fewer would not have the power
        fewer = dataclasses.replace(PLAN, max_tries=tries - 1, min_power=PLAN.power)
        assert size(base, rate, known, fewer) is None
    higher = min(PLAN.max_rate, rate + Fraction(1, 20))
    more = size(base, higher, known)
    assert more is not None and more[0] <= tries  # a larger lift never needs more tests


def test_predict_is_none_for_a_snapshot_without_sources() -> None:
    history = History([make_problem(name, at=at) for at, name in
                       enumerate(("credit", "finance", "search"))])
    for name in ("credit", "finance"):  # 3 attempts each: fewer than a source needs
        history.attempts(name, PERTURB, 3, 37)
        history.attempts(name, PRUNE, 3, 0, authors=("a", "b"))
    found = derivation(history.dag(), everything)
    assert found.chains[PRUNE] and found.hypotheses == []
    assert all(predict(s, history.problems["search"].id) is None for s in found.chains[PRUNE])


def test_open_until_its_tests_decide_it_whatever_its_pattern_does_unless_retired() -> None:
    """A hypothesis stays open when its target's own attempts of the class go badly, when a
    source stops showing the lift and when its pattern falls from live (its tests decide it,
    written before testing); it is withdrawn only when its class is retired."""
    history = _history((3, 3), (5, 25))
    search = history.problems["search"].id
    [hypothesis] = [h for h in derivation(history.dag(), everything).hypotheses
                    if h.problem == search]
    history.attempts("search", PRUNE, 0, 4)
    history.attempts("finance", PRUNE, 8, 4)  # the class's 32nd attempt: a snapshot
    found = derivation(history.dag(), everything)
    head = found.chains[PRUNE][-1]
    assert head.pattern.status == "live" and head.by_problem[search][:2] == (0, 4)
    assert source_lifts(head) is None  # search itself shows no lift ...
    assert source_lifts(head, target=search) is not None  # ... its sources do
    assert hypothesis.id in {h.id for h in found.open_hypotheses()}
    history.attempts("credit", PRUNE, 0, 28)  # the 64th: credit now shows none
    found = derivation(history.dag(), everything)
    assert source_lifts(found.chains[PRUNE][-1], target=search) is None
    assert hypothesis.id in {h.id for h in found.open_hypotheses()}
    history.attempts("credit", PRUNE, 0, 80)  # P(lift > 0) below 0.8: no longer live
    found = derivation(history.dag(), everything)
    assert found.chains[PRUNE][-1].pattern.status == "candidate"
    assert hypothesis.id in {h.id for h in found.open_hypotheses()}
    history.attempts("credit", PRUNE, 0, 400)  # the 512th: contradicted, retired
    found = derivation(history.dag(), everything)
    assert found.chains[PRUNE][-1].pattern.status == "retired"
    assert hypothesis in found.hypotheses and not found.verdicts
    assert hypothesis.id not in {h.id for h in found.open_hypotheses()}
