"""Tests of cross-problem hypotheses and verdicts on synthetic DAGs of real records: a live
pattern learned on two problems gives a hypothesis for another problem with the affordance and
not for one without; its counted tests decide it; confirmation rates per pattern and domain pair."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from playbook_history import TRAINED, History, everything, make_problem

from playbook.curator import derivation, derive
from playbook.evidence import Attempt, collect_evidence
from playbook.hypotheses import _authors_in_turn, confirmation_rates, decide, verdicts_of
from playbook.power import PLAN, predict
from playbook.stats import Lift
from research_dag import DERIVED_AUTHOR, Experiment, Hypothesis, Outcome, ResearchDag, Verdict

PRUNE = "prune:weight_vector"
PERTURB = "perturb:constant"


def _learned_on_finance() -> History:
    """prune:weight_vector goes live on finance and credit (two authors; a hypothesis needs
    two source problems showing the lift: playbook/power.py `min_sources`); search has
    weights and has never been pruned; train has no weight vector."""
    history = History([
        make_problem("finance", domains=["finance", "trading"], at=1),
        make_problem("search", domains=["search", "ranking"], at=2),
        make_problem("train", TRAINED, ["ml"], at=3),
        make_problem("credit", domains=["finance", "credit"], at=4),
    ])
    history.attempts("finance", PERTURB, 3, 37)
    history.attempts("credit", PERTURB, 3, 37)
    for _ in range(2):
        history.attempts("finance", PRUNE, 5, 2, authors=("a", "b"))
        history.attempts("credit", PRUNE, 5, 2, authors=("a", "b"))
    history.attempts("search", PERTURB, 4, 36)
    return history


def _hypothesis_for(history: History, problem: str) -> Hypothesis:
    found = [h for h in derivation(history.dag(), everything).hypotheses
             if h.problem == history.problems[problem].id]
    assert len(found) == 1
    return found[0]


def _test(history: History, hypothesis: Hypothesis, successes: int, failures: int
          ) -> list[Experiment]:
    made = []
    for i in range(successes + failures):
        success = (i + 1) * successes // (successes + failures) > i * successes // (
            successes + failures)
        made.append(history.attempt("search", PRUNE, success, hypothesis=hypothesis.id))
    return made


def test_a_hypothesis_for_the_problem_with_the_affordance_only() -> None:
    history = _learned_on_finance()
    found = derivation(history.dag(), everything)
    targets = {h.problem for h in found.hypotheses}
    assert targets == {history.problems["search"].id}  # not train: no weight vector there
    hypothesis = found.hypotheses[0]
    pattern = next(s.pattern for s in found.chains[PRUNE] if s.pattern.id == hypothesis.pattern)
    assert pattern.status == "live"
    assert hypothesis.author == DERIVED_AUTHOR and hypothesis.signature == b""
    assert hypothesis.mutation_kind == PRUNE and hypothesis.affordance == "weight_vector"
    assert hypothesis.sites == ['strategy.py:WEIGHTS["a"]', 'strategy.py:WEIGHTS["b"]',
                                'strategy.py:WEIGHTS["c"]']
    # finance and credit (the two sources): 10 of 14 each against 3 of 40; search's base
    # rate 4 of 40
    [snapshot] = [s for s in found.chains[PRUNE] if s.pattern.id == hypothesis.pattern]
    prediction = predict(snapshot, history.problems["search"].id)
    assert prediction is not None and prediction.sources == 2
    assert hypothesis.tries == prediction.tries < PLAN.max_tries
    assert prediction.power >= PLAN.power
    assert hypothesis.expected_lift == float(prediction.rate - prediction.base) > 0
    assert f"decided by {prediction.tries} tests" in hypothesis.text
    assert hypothesis.created_ms == pattern.created_ms
    assert "search" in hypothesis.text and "finance" in hypothesis.text
    assert found.open_hypotheses() == [hypothesis]


def test_no_hypothesis_where_the_class_is_already_shown() -> None:
    # shown: 4 attempts on search precede the first live snapshot
    shown = History([make_problem("finance", domains=["finance"], at=1),
                     make_problem("search", domains=["search"], at=2)])
    shown.attempts("search", PRUNE, 1, 3)
    shown.attempts("finance", PERTURB, 3, 37)
    shown.attempts("finance", PRUNE, 9, 5, authors=("a", "b"))
    assert derivation(shown.dag(), everything).hypotheses == []


def test_one_hypothesis_per_class_and_problem_as_the_pattern_grows() -> None:
    history = _learned_on_finance()
    first = _hypothesis_for(history, "search")
    history.attempts("finance", PRUNE, 30, 10, authors=("a", "b", "c"))
    assert _hypothesis_for(history, "search").id == first.id


def test_confirmed_by_its_tests() -> None:
    history = _learned_on_finance()
    hypothesis = _hypothesis_for(history, "search")
    tests = _test(history, hypothesis, 6, 2)
    verdicts = derivation(history.dag(), everything).verdicts
    assert len(verdicts) == 1
    verdict = verdicts[0]
    assert verdict.hypothesis == hypothesis.id and verdict.result == "confirmed"
    assert verdict.tests == [t.id for t in tests[:len(verdict.tests)]]
    assert len(verdict.tests) <= (hypothesis.tries or PLAN.tries)
    assert len(verdict.control) == 40  # search's attempts of other classes
    assert verdict.author == DERIVED_AUTHOR and verdict.created_ms == max(
        [hypothesis.created_ms, tests[len(verdict.tests) - 1].created_ms])
    assert "confirmed" in verdict.text


def test_negative_transfer_is_refuted() -> None:
    history = _learned_on_finance()
    history.attempts("search", PERTURB, 40, 0)  # search's base rate is now high
    hypothesis = _hypothesis_for(history, "search")
    _test(history, hypothesis, 0, 8)
    verdict = derivation(history.dag(), everything).verdicts[0]
    # a plan sized for a large lift is short: its last test decides, "no lift shown" unless
    # P(lift > 0) <= 0.01 already (negative transfer)
    assert verdict.result == "refuted" and len(verdict.tests) == hypothesis.tries
    assert f"0 of {hypothesis.tries} tests improved" in verdict.text
    hypothesis = hypothesis.model_copy(update={"tries": 16})
    evidence = collect_evidence(history.dag(), everything)
    [longer] = verdicts_of([hypothesis], evidence)
    assert longer.result == "refuted" and "negative transfer" in longer.text
    assert len(longer.tests) < 16  # decisive before its planned tries


def test_no_verdict_before_the_tests_decide_and_uncounted_tests_are_ignored() -> None:
    history = _learned_on_finance()
    hypothesis = _hypothesis_for(history, "search")
    tests = _test(history, hypothesis, 2, 1)
    assert derivation(history.dag(), everything).verdicts == []
    more = _test(history, hypothesis, 5, 0)
    unreplayed = {e.id for e in more}

    def counts(experiment: Experiment) -> bool:
        return experiment.id not in unreplayed

    assert derivation(history.dag(), counts).verdicts == []
    assert derivation(history.dag(), everything).verdicts[0].tests[:3] == [t.id for t in tests]


def test_verdict_records_are_new_once_and_deterministic() -> None:
    history = _learned_on_finance()
    hypothesis = _hypothesis_for(history, "search")
    _test(history, hypothesis, 6, 2)
    dag = history.dag()
    records = derive(dag, everything)
    assert any(isinstance(r, Verdict) for r in records)
    for record in records:
        dag.add(record)
    assert derive(dag, everything) == []
    assert [r.id for r in derive(ResearchDag(reversed(history.records)), everything)] == [
        r.id for r in records]


def test_decide() -> None:
    assert decide(Lift(3, 3, 4, 40), PLAN.tries) is None  # too few tests to decide early
    assert decide(Lift(4, 4, 4, 40), PLAN.tries) == "confirmed"  # decisive early
    assert decide(Lift(0, 4, 30, 40), PLAN.tries) == "refuted"  # negative transfer, early
    assert decide(Lift(2, 5, 4, 40), PLAN.tries) is None
    assert decide(Lift(3, 8, 4, 40), PLAN.tries) == "confirmed"
    assert decide(Lift(0, 8, 4, 40), PLAN.tries) == "refuted"  # no lift shown at the plan's size
    # Inconclusive at its size (P = 0.71, 0.90): the plan goes on, to twice its tests.
    assert decide(Lift(1, 8, 4, 40), PLAN.tries) is None
    assert decide(Lift(2, 8, 4, 40), PLAN.tries) is None
    assert PLAN.last(PLAN.tries) == 2 * PLAN.tries
    assert decide(Lift(4, 12, 5, 52), PLAN.tries) is None  # between the looks: early bars only
    assert decide(Lift(5, 16, 6, 64), PLAN.tries) == "confirmed"  # P = 0.986 >= 0.97
    assert decide(Lift(4, 16, 6, 64), PLAN.tries) == "refuted"  # P = 0.955: not at the last look
    # A plan already at the cap has one look, at confirm_p.
    assert PLAN.last(PLAN.max_tries) == PLAN.max_tries
    assert decide(Lift(9, 32, 20, 136), PLAN.max_tries) in ("confirmed", "refuted")
    assert PLAN.refute_p < PLAN.continue_p < PLAN.confirm_p <= PLAN.early_confirm_p
    assert PLAN.confirm_p < PLAN.extended_confirm_p < PLAN.early_confirm_p


def test_confirmation_rates_per_pattern_and_domain_pair() -> None:
    history = _learned_on_finance()
    hypothesis = _hypothesis_for(history, "search")
    _test(history, hypothesis, 6, 2)
    dag = history.dag()
    for record in derive(dag, everything):
        dag.add(record)
    rates = confirmation_rates(dag)
    assert [(r.key, r.confirmed, r.decided) for r in rates.by_pattern] == [(PRUNE, 1, 1)]
    assert [(r.key, r.confirmed, r.decided) for r in rates.by_domains] == [
        ("finance -> search", 1, 1)]
    rate = rates.by_pattern[0]
    assert rate.rate == 1.0 and 0.0 < rate.low < rate.high <= 1.0
    assert confirmation_rates(dag, verdicts=[]).by_pattern == []


def test_texts_stay_bounded_with_long_names_and_many_problems() -> None:
    """Problem names are the posers' text (up to 200 characters): statements name a few."""
    names = [f"{i:02d}" + "n" * 198 for i in range(26)]
    history = History([make_problem(name) for name in names])
    for name in names[:24]:  # 24 x 200 characters: more than a record's text holds
        history.attempts(name, PERTURB, 0, 3)
        history.attempts(name, PRUNE, 4, 0, authors=("a", "b"))
    found = derivation(history.dag(), everything)
    assert found.hypotheses and all(len(h.text) <= 4_000 for h in found.hypotheses)
    assert all(len(s.pattern.text) <= 4_000 for c in found.chains.values() for s in c)


def test_tests_naming_another_nodes_id_for_the_same_hypothesis_count() -> None:
    """Nodes whose counted evidence differs derive the same (class, problem) hypothesis under
    other ids (its pattern snapshot differs): their tests decide ours too. Tests of another
    class, or on another problem, do not."""
    history = _learned_on_finance()
    hypothesis = _hypothesis_for(history, "search")
    peers = ["e" * 64, "f" * 64]  # the same hypothesis as two peers derived it
    history.attempt("search", PERTURB, True, hypothesis=peers[0])  # another class
    history.attempt("finance", PRUNE, True, hypothesis=peers[0])  # another problem
    tests = [history.attempt("search", PRUNE, i < 6, hypothesis=peers[i % 2], author=f"p{i}")
             for i in range(8)]
    [verdict] = derivation(history.dag(), everything).verdicts
    assert verdict.hypothesis == hypothesis.id and verdict.result == "confirmed"
    assert verdict.tests == [t.id for t in tests[: len(verdict.tests)]]


def test_the_plan_leaves_out_sites_the_target_tried_and_a_fully_tried_class_gets_none() -> None:
    """A transfer brings nothing a target has already tried: in a 16-node swarm every target
    had screened its switches in its first rounds, and fifteen "toggle:switch/on" hypotheses
    planned at those switches could never be tested (each stayed open for 120 rounds). Sites
    the target tried the class at, before the pattern's snapshot, are left out of the plan; a
    class tried at every site gets no hypothesis."""
    one = _learned_on_finance()
    one.attempt("search", PRUNE, False, at=0, site='strategy.py:WEIGHTS["a"]')
    assert _hypothesis_for(one, "search").sites == ['strategy.py:WEIGHTS["b"]',
                                                    'strategy.py:WEIGHTS["c"]']
    every = _learned_on_finance()
    for at, key in enumerate("abc"):  # three candidates (one at a time: one strategy each)
        every.attempt("search", PRUNE, False, at=at, site=f'strategy.py:WEIGHTS["{key}"]')
    assert not [h for h in derivation(every.dag(), everything).hypotheses
                if h.problem == every.problems["search"].id]
    late = _learned_on_finance()  # tried after the snapshot: the plan as it was written
    late.attempt("search", PRUNE, False, at=10**9, site='strategy.py:WEIGHTS["a"]')
    assert len(_hypothesis_for(late, "search").sites) == 3


def test_only_problems_someone_counted_worked_on_are_targets() -> None:
    """Problem ids are free: every stranger's problem with a weight vector became a hypothesis
    of ours (stored below our reserve, shared, its sites analysed and kept: 12 KB of memory
    and an 807-byte record each, a red team measured). A target now needs an experiment the
    node counts (its own, or a peer's it vouches for); a baseline is enough."""
    history = _learned_on_finance()
    junk = [make_problem(f"junk{n}", domains=["junk"], at=10 + n) for n in range(20)]
    history.records += junk  # posed, no experiment on them anywhere
    stranger = make_problem("posed by a stranger", domains=["junk"], at=40)
    history.records.append(stranger)
    history.records.append(Experiment(  # its baseline, by an author we do not count
        problem=stranger.id, strategy={"strategy.py": "# baseline\n"},
        outcome=Outcome(status="ok", score=0.5), created_ms=history.tick(), author="z"))
    found = derivation(history.dag(), lambda e: e.author != "z")
    assert {h.problem for h in found.hypotheses} == {history.problems["search"].id}
    sites: dict[str, dict[str, list[str]]] = {}
    derivation(history.dag(), lambda e: e.author != "z", sites_of=sites)
    assert not {p.id for p in junk} & set(sites) and stranger.id not in sites


def test_one_testers_tests_dated_first_do_not_decide_a_hypothesis_alone() -> None:
    """A peer in good standing dated its failing tests just after the hypothesis, ahead of
    every honest test, and refuted it with its own tests alone (a red team, 2026-12-08):
    authors now take turns in a verdict's order, so the deciding tests are both testers'."""
    history = _learned_on_finance()
    hypothesis = _hypothesis_for(history, "search")
    for i in range(8):  # honest tests: 6 of 8 improve
        history.attempt("search", PRUNE, i % 4 != 3, hypothesis=hypothesis.id, author="honest")
    [before] = derivation(history.dag(), everything).verdicts
    assert before.result == "confirmed"
    for i in range(8):
        history.attempt("search", PRUNE, False, hypothesis=hypothesis.id, author="mallory",
                        at=hypothesis.created_ms + 1 + i, site=f"strategy.py:Y{i}")
    [after] = [v for v in derivation(history.dag(), everything).verdicts
               if v.hypothesis == hypothesis.id]
    authors = [e.author for e in history.records
               if isinstance(e, Experiment) and e.id in set(after.tests)]
    assert authors.count("honest") >= authors.count("mallory") - 1 and "honest" in authors


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=40))
def test_in_a_verdicts_order_no_author_gets_ahead_of_another_by_more_than_one(
    authors: list[str],
) -> None:
    tests = [Attempt((n, f"{n:064x}"), "p", author, ("k",), n % 2 == 0, "h")
             for n, author in enumerate(authors)]
    turns = _authors_in_turn(tests)
    assert sorted(t.key for t in turns) == [t.key for t in tests]
    for author in set(authors):  # each author's own tests stay in their order
        assert [t.key for t in turns if t.author == author] == [
            t.key for t in tests if t.author == author]
    for end in range(len(turns) + 1):
        counts = Counter(t.author for t in turns[:end])
        for a in counts:
            for b in set(authors):
                left_b = sum(1 for t in tests if t.author == b) - counts[b]
                assert counts[a] <= counts[b] + 1 or left_b == 0
