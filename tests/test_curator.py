"""Tests of the playbook curator on synthetic DAGs of real records: the pattern lifecycle,
determinism (any insertion order, any two DAGs with the same evidence), bounded churn, and that
only counted, described evidence is read."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from playbook_history import TRAINED, History, change, everything, make_problem

from playbook.curator import (
    LIFECYCLE,
    derivation,
    derive,
    next_status,
    patterns_derived_here,
)
from playbook.evidence import collect_evidence
from playbook.stats import Lift
from research_dag import (
    DERIVED_AUTHOR,
    Experiment,
    Outcome,
    Pattern,
    ResearchDag,
    decode_record,
    encode_record,
)

PRUNE = "prune:weight_vector"
PERTURB = "perturb:constant"


def _lifecycle_history() -> History:
    """prune:weight_vector works on finance and search for a while (two authors), then stops
    while perturbing constants starts to pay; credit has weights and is never pruned."""
    history = History([make_problem("finance", domains=["finance"]),
                       make_problem("search", domains=["search"]),
                       make_problem("train", TRAINED, ["ml"]),
                       make_problem("credit", domains=["credit"])])
    history.attempts("finance", PERTURB, 2, 30)
    history.attempts("finance", PRUNE, 9, 3, authors=("a", "b"))
    history.attempts("search", PERTURB, 2, 20)
    history.attempts("search", PRUNE, 4, 2)
    history.attempts("finance", PRUNE, 0, 60)
    history.attempts("search", PRUNE, 0, 30)
    history.attempts("finance", PERTURB, 20, 20)
    history.attempts("finance", PRUNE, 0, 10)
    return history


def test_a_pattern_goes_candidate_live_retired_as_evidence_accumulates() -> None:
    history = _lifecycle_history()
    chain = [s.pattern for s in derivation(history.dag(), everything).chains[PRUNE]]
    statuses = [p.status for p in chain]
    assert statuses[0] == "candidate"
    assert statuses.index("live") < statuses.index("retired")
    assert statuses[-1] == "retired" and chain[-1].retired
    for before, after in itertools.pairwise(chain):  # one chain, each names the last
        assert after.supersedes == before.id
    assert chain[0].supersedes is None
    live = chain[statuses.index("live")]
    assert live.mutation_kind == PRUNE and (live.operation, live.affordance) == tuple(
        PRUNE.split(":"))
    assert "prune:weight_vector improved" in live.text and "finance" in live.text
    assert live.refuted_if == LIFECYCLE.refuted_if
    assert set(live.domains) <= {"finance", "search"}


def test_derived_records_are_derived_unsigned_and_dated_by_what_they_cite() -> None:
    history = _lifecycle_history()
    dag = history.dag()
    records = derive(dag, everything)
    assert records and {r.kind for r in records} >= {"pattern", "hypothesis"}
    for record in records:
        assert record.author == DERIVED_AUTHOR and record.signature == b""
        assert decode_record(encode_record(record)) == record
        if isinstance(record, Pattern):
            cited = [*record.supporting, *record.contradicting, *(record.control or ())]
            times = [r.created_ms for r in dag.get_many(cited)]
            if record.supersedes is not None:
                previous = next(r for r in records if r.id == record.supersedes)
                times.append(previous.created_ms)
            assert record.created_ms == max(times)
            assert record.success_rate == len(record.supporting) / (
                len(record.supporting) + len(record.contradicting))


def test_status_changes_and_powers_of_two_only() -> None:
    """Bounded churn: a snapshot at 4, 8, 16... attempts of the class or on a status change."""
    history = _lifecycle_history()
    chain = derivation(history.dag(), everything).chains[PRUNE]
    previous = None
    for snapshot in chain:
        n = snapshot.lift.n
        assert n & (n - 1) == 0 or snapshot.pattern.status != previous
        previous = snapshot.pattern.status
    assert len(chain) <= 12


@given(st.randoms(use_true_random=False))
@settings(max_examples=10, deadline=None)
def test_any_insertion_order_derives_the_same_ids(rng: random.Random) -> None:
    history = _lifecycle_history()
    shuffled = list(history.records)
    rng.shuffle(shuffled)
    expected = [r.id for r in derive(history.dag(), everything)]
    assert [r.id for r in derive(ResearchDag(shuffled), everything)] == expected


def test_two_dags_with_the_same_evidence_derive_the_same_bytes() -> None:
    first, second = _lifecycle_history(), _lifecycle_history()
    # the second also holds a peer's unrelated derived record and some of the first's output
    mine = derive(first.dag(), everything)
    extra = second.dag()
    for record in mine[:3]:
        extra.add(record)
    theirs = derive(extra, everything)
    assert [encode_record(r) for r in mine[3:]] == [encode_record(r) for r in theirs]
    assert [encode_record(r) for r in derivation(extra, everything).records()] == [
        encode_record(r) for r in mine]


def test_derive_is_idempotent_and_earlier_snapshots_stay() -> None:
    """Once held, nothing new; more evidence later adds to the chains, never rewrites them."""
    history = _lifecycle_history()
    early = ResearchDag(history.records[:80])
    first = derive(early, everything)
    for record in first:
        early.add(record)
    assert derive(early, everything) == []
    later = derivation(history.dag(), everything)
    assert {r.id for r in first} <= {r.id for r in later.records()}


def test_evidence_not_counted_is_ignored() -> None:
    history = _lifecycle_history()
    unreplayed = [history.attempt("finance", PRUNE, True, author="liar") for _ in range(40)]
    hidden = {e.id for e in unreplayed}

    def counts(experiment: Experiment) -> bool:
        return experiment.id not in hidden

    without = History([])
    without.records = [r for r in history.records if r.id not in hidden]
    assert [r.id for r in derive(history.dag(), counts)] == [
        r.id for r in derive(without.dag(), everything)]
    assert [r.id for r in derive(history.dag(), everything)] != [
        r.id for r in derive(without.dag(), everything)]


def test_success_is_the_dags_finding() -> None:
    history = _lifecycle_history()
    history.attempt("finance", PRUNE, True, at=5)  # older than its parent: still a finding
    dag = history.dag()
    attempts = collect_evidence(dag, everything).attempts
    assert len(attempts) == len([r for r in history.records
                                 if isinstance(r, Experiment) and r.parent is not None])
    for attempt in attempts:
        experiment = dag.get(attempt.id)
        assert isinstance(experiment, Experiment)
        assert attempt.success == dag.is_finding(experiment)
    assert [a.key for a in attempts] == sorted(a.key for a in attempts)


def test_undescribed_experiments_and_baselines_are_ignored() -> None:
    history = _lifecycle_history()
    before = [r.id for r in derive(history.dag(), everything)]
    finance = history.problems["finance"]
    for i in range(30):  # old records: no `changes`
        history.records.append(Experiment(
            problem=finance.id, parent=history.baselines["finance"].id,
            strategy={"strategy.py": f"# old {i}\n"}, mutation_kind=PRUNE,
            outcome=Outcome(status="ok", score=0.9), created_ms=history.tick()))
    assert [r.id for r in derive(history.dag(), everything)] == before


def test_patterns_derived_here_are_the_heads() -> None:
    history = _lifecycle_history()
    heads = patterns_derived_here(history.dag(), everything)
    assert [p.mutation_kind for p in heads] == sorted({PRUNE, PERTURB})
    chains = derivation(history.dag(), everything).chains
    assert [p.id for p in heads] == [chains[k][-1].pattern.id for k in sorted(chains)]


def test_a_peer_pattern_is_not_derived_here() -> None:
    history = _lifecycle_history()
    dag = history.dag()
    mine = derivation(dag, everything)
    head = mine.heads()[0]
    forged = head.model_copy(update={"text": "prune always wins", "status": "live",
                                     "retired": False})
    assert mine.derived_here(head.id) and not mine.derived_here(forged.id)


def test_a_class_no_longer_tried_follows_its_control() -> None:
    """Judged again as other classes' attempts accumulate (every power of two of attempts)."""
    history = History([make_problem("finance"), make_problem("search")])
    history.attempts("finance", PRUNE, 7, 3, authors=("a", "b"))
    history.attempts("search", PRUNE, 3, 1)
    history.attempts("finance", PERTURB, 1, 40)
    statuses = [s.pattern.status for s in derivation(history.dag(), everything).chains[PRUNE]]
    assert statuses[-1] == "live"


def test_lifecycle_rule() -> None:
    assert next_status(None, Lift(9, 12, 2, 32), broad=True) == "live"
    assert next_status(None, Lift(9, 12, 2, 32), broad=False) == "candidate"
    assert next_status(None, Lift(4, 4, 0, 30), broad=True) == "candidate"  # too few attempts
    assert next_status("live", Lift(5, 12, 2, 32), broad=True) == "live"  # hysteresis
    assert next_status("live", Lift(1, 12, 8, 32), broad=True) == "candidate"
    assert next_status("live", Lift(0, 30, 10, 32), broad=True) == "retired"
    assert next_status(None, Lift(0, 9, 30, 32), broad=True) == "candidate"  # too few to retire
    assert next_status("retired", Lift(3, 30, 4, 32), broad=True) == "retired"
    assert next_status("retired", Lift(12, 40, 4, 32), broad=True) in {"candidate", "live"}


@given(st.randoms(use_true_random=False), st.integers(1, 40))
@settings(max_examples=25, deadline=None)
def test_a_candidate_evaluated_again_is_one_attempt(rng: random.Random, copies: int) -> None:
    """Many nodes evaluating one candidate (a swarm's first round toggles the same switch of
    the same baseline on every node) is one piece of evidence: eight copies made a class live
    ("improved 8 of 8") from one change, and its hypotheses were refuted on every problem they
    reached. Copies by other authors, later, with the same strategy and changes leave every
    derived record as it was; a new candidate still counts."""
    history = _lifecycle_history()
    plain = derivation(history.dag(), everything)
    originals = [r for r in history.records if isinstance(r, Experiment) and r.parent]
    copied = list(history.records)
    for n in range(copies):
        source = rng.choice(originals)
        copied.append(source.model_copy(update={
            "author": f"copier{n % 5}", "created_ms": 10_000 + n}))
    again = derivation(ResearchDag(copied), everything)
    assert [s.pattern.id for c in again.chains.values() for s in c] == [
        s.pattern.id for c in plain.chains.values() for s in c]
    fresh = originals[0].model_copy(update={
        "strategy": {"strategy.py": "# a new candidate\n"}, "created_ms": 20_000})
    assert len(collect_evidence(ResearchDag([*copied, fresh]), everything)
               .attempts) == len(collect_evidence(history.dag(), everything).attempts) + 1


@given(st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=1, max_size=8))
@settings(max_examples=50, deadline=None)
def test_a_backdated_failing_copy_does_not_hide_a_success(
        copies: list[tuple[int, bool]]) -> None:
    """A failure counts on its author's standing alone, a success only once replayed: a copy
    of an honest improvement, dated before it with a failing score, would have hidden it if
    the first copy decided. However many copies, dated however, the candidate is one attempt
    that succeeds when any counted copy did, where its earliest copy is; a copy that
    describes its change as another class is another attempt."""
    history = History([make_problem("finance")])
    honest = history.attempt("finance", PRUNE, True)
    made = [honest.model_copy(update={
        "author": f"peer{n}", "created_ms": honest.created_ms + shift,
        "outcome": Outcome(status="ok", score=0.6 if success else 0.0)})
        for n, (shift, success) in enumerate(copies)]
    relabelled = honest.model_copy(update={
        "author": "other", "created_ms": honest.created_ms + 10,
        "changes": [change(PERTURB)]})
    attempts = collect_evidence(ResearchDag([*history.records, *made, relabelled]),
                                everything).attempts
    first = min((e.created_ms, e.id) for e in [honest, *made])
    assert [(a.classes, a.success, a.key) for a in attempts] == [
        ((PRUNE,), True, first), ((PERTURB,), True, (relabelled.created_ms, relabelled.id))]
