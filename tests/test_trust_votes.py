"""The trust ledger keeps a vote (author, flag, outcome key) per verification instead of the
record (issue 10: memory outside the DAG), bounded per experiment, and judges exactly as it
did when it compared whole outcomes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.trust import MAX_VOTES, Ledger, outcome_key, outcomes_match
from research_dag import Experiment, Header, Outcome, Verification

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
AUTHORS = ["me", "alice", "bob", "carol", "dave", "eve"]

outcomes = st.builds(
    Outcome,
    status=st.sampled_from(["ok", "ok", "crash", "timeout"]),
    score=st.sampled_from([None, 0.0, -0.0, 1.0, 0.5]),
    items=st.dictionaries(st.sampled_from(["a", "b"]), st.booleans(), max_size=2),
    strategy_fuel=st.sampled_from([0, 7]),
    evaluator_fuel=st.sampled_from([0, 2**40]),
)


@SETTINGS
@given(outcomes, outcomes)
def test_outcome_keys_match_exactly_when_outcomes_do(a: Outcome, b: Outcome) -> None:
    key = outcome_key(a)
    assert outcomes_match(a, b) == (key is not None and key == outcome_key(b))


def _old_verdict(
    ledger: Ledger, experiment: Experiment, votes: list[Verification]
) -> tuple[str, int]:
    """Ledger.verdict as it was with whole verifications kept (7b7a93d)."""

    def voters(match: bool) -> set[str]:
        return {v.author for v in votes if v.experiment == experiment.id and v.match is match
                and v.author != experiment.author
                and outcomes_match(experiment.outcome, v.outcome) is match
                and ledger.vouches(v.author)}

    matches, mismatches = len(voters(True)), len(voters(False))
    if experiment.author in (ledger.me, "local"):
        return "own", matches
    mine = ledger.my_replays.get(experiment.id)
    verified = mine if mine is not None else matches - mismatches >= ledger.config.k
    if verified:
        return "verified", matches
    if mine is False or mismatches:
        return "disputed", matches
    return "pending", matches


@SETTINGS
@given(
    st.sampled_from(AUTHORS),
    outcomes,
    st.lists(st.tuples(st.sampled_from(AUTHORS), st.booleans(), outcomes), max_size=8),
    st.dictionaries(st.sampled_from(AUTHORS), st.sampled_from([-3.0, 0.0, 0.25, 1.0])),
    st.sampled_from([None, True, False]),
)
def test_verdicts_are_those_of_whole_verifications(
    author: str,
    outcome: Outcome,
    cast: list[tuple[str, bool, Outcome]],
    standing: dict[str, float],
    replayed: bool | None,
) -> None:
    claim = Experiment(problem="0" * 64, strategy={"s.py": "x"}, outcome=outcome, author=author)
    votes = [Verification(experiment=claim.id, outcome=theirs, match=match, author=voter)
             for voter, match, theirs in cast]
    ledger = Ledger(me="me", standing=dict(standing))
    if replayed is not None:
        ledger.my_replays[claim.id] = replayed
    for vote in votes + votes:  # the same verification twice: by gossip and by sync
        ledger.note(vote)
    expected = _old_verdict(ledger, claim, votes)
    assert ledger.verdict(claim) == expected
    assert ledger.verified(claim) == (expected[0] in ("own", "verified"))
    loaded: list[str] = []

    def load(record_id: str) -> Experiment:
        loaded.append(record_id)
        return claim

    header = Header(id=claim.id, kind="experiment", created_ms=0, author=author)
    assert ledger.verdict_of(header, load) == expected
    assert loaded == ([claim.id] if votes else [])  # the record is read only to compare votes


def test_votes_per_experiment_are_bounded_and_vouching_ones_stay() -> None:
    claim = Experiment(problem="0" * 64, strategy={"s.py": "x"},
                       outcome=Outcome(status="ok", score=1.0), author="alice")
    ledger = Ledger(me="me", standing={"bob": 1.0, "carol": 1.0})
    for n in range(3 * MAX_VOTES):  # fresh identities cost nothing
        ledger.note(Verification(experiment=claim.id, outcome=claim.outcome, match=True,
                                 author=f"sybil{n}"))
    assert len(ledger.votes[claim.id]) == MAX_VOTES
    assert ledger.verdict(claim) == ("pending", 0)
    for voter in ("bob", "carol"):
        ledger.note(Verification(experiment=claim.id, outcome=claim.outcome, match=True,
                                 author=voter))
    assert len(ledger.votes[claim.id]) == MAX_VOTES
    assert ledger.verdict(claim) == ("verified", 2)
