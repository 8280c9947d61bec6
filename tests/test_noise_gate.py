"""The noise gate: paired per-case comparison, permutation test, bootstrap interval, deterministic;
ties and zero variance (the deterministic stand-in model) handled."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.noise_gate import GateDecision, case_scores, gate
from research_dag import MAX_U64, MIN_I64, Metric, Outcome

UP = Metric(name="pass_rate", direction="maximize", target=0.95)
DOWN = Metric(name="errors", direction="minimize")


def _outcome(verdicts: list[str]) -> Outcome:
    scores = list(case_scores(_raw(verdicts)).values())
    return _raw(verdicts).model_copy(update={"score": sum(scores) / len(scores)})


def _raw(verdicts: list[str]) -> Outcome:
    return Outcome(status="ok", score=0.0,
                   details={f"case:{i:02d}": v for i, v in enumerate(verdicts)})


def test_case_scores_read_verdicts_samples_and_numbers() -> None:
    outcome = Outcome(status="ok", score=0.5, details={
        "case:a": "11000", "case:b": "10 11", "case:c": 0.25, "case:d": "1x0", "other": "111"})
    assert case_scores(outcome) == {"case:a": 0.4, "case:b": 0.75, "case:c": 0.25}


def test_a_change_that_fixes_every_case_is_kept_with_a_zero_width_interval() -> None:
    before, after = _outcome(["11000"] * 10), _outcome(["11100"] * 10)
    decision = gate(UP, after, before)
    assert decision is not None and decision.kept
    assert (decision.wins, decision.losses) == (10, 0)
    assert decision.p_value == 1 / 1024
    assert decision.low == decision.high == decision.mean_gain
    assert "10 up 0 down" in decision.describe() and "95 %" in decision.describe()


def test_ties_and_identical_outcomes_are_never_kept() -> None:
    same = _outcome(["11011"] * 10)
    decision = gate(UP, same, same)
    assert decision is not None and not decision.kept and decision.p_value == 1.0


def test_too_few_winning_cases_stay_within_noise() -> None:
    before = _outcome(["11000"] * 10)
    four = _outcome(["11100"] * 4 + ["11000"] * 6)
    five = _outcome(["11100"] * 5 + ["11000"] * 5)
    assert gate(UP, four, before).kept is False  # type: ignore[union-attr]
    assert gate(UP, five, before).kept is True  # type: ignore[union-attr]
    # The permutation test weighs how much each case moved: six cases up by 0.6 outweigh four
    # down by 0.2 (p = 46/1024), where a sign test (6-4) would not keep it.
    mixed = _outcome(["11111"] * 6 + ["10000"] * 4)
    decision = gate(UP, mixed, before)
    assert decision is not None and decision.kept and decision.losses == 4
    assert decision.p_value == 46 / 1024
    split = _outcome(["11111"] * 3 + ["00000"] * 2 + ["11000"] * 5)
    decision = gate(UP, split, before)
    assert decision is not None and not decision.kept and decision.mean_gain > 0


def test_many_cases_use_seeded_draws_and_stay_deterministic() -> None:
    before = _outcome(["11000"] * 30)
    after = _outcome(["11100"] * 12 + ["11000"] * 14 + ["10000"] * 4)
    first, again = gate(UP, after, before), gate(UP, after, before)
    assert first is not None and first == again
    assert first.kept and first.p_value < 0.05


def test_direction_and_missing_cases() -> None:
    fewer = _outcome(["0"] * 6)
    more = _outcome(["1"] * 6)
    assert gate(DOWN, fewer, more).kept is True  # type: ignore[union-attr]
    assert gate(DOWN, more, fewer).kept is False  # type: ignore[union-attr]
    bare = Outcome(status="ok", score=1.0)
    assert gate(UP, bare, more) is None and gate(UP, more, bare) is None


verdict_lists = st.lists(st.text(alphabet="01", min_size=1, max_size=6), min_size=2, max_size=20)


@settings(max_examples=60, deadline=None)
@given(verdict_lists, st.data())
def test_the_gate_is_deterministic_and_never_keeps_both_ways(
    first: list[str], data: st.DataObject
) -> None:
    second = data.draw(st.lists(st.text(alphabet="01", min_size=1, max_size=6),
                                min_size=len(first), max_size=len(first)))
    a, b = _outcome(first), _outcome(second)
    ab, ba = gate(UP, a, b), gate(UP, b, a)
    assert ab is not None and ba is not None
    assert ab == gate(UP, a, b)
    assert not (ab.kept and ba.kept)
    assert ab.low <= ab.high and 0.0 <= ab.p_value <= 1.0
    assert ab.wins == ba.losses and ab.losses == ba.wins


def test_the_changelog_replays_the_gate_and_states_the_interval() -> None:
    from node.report import changelog
    from research_dag import Experiment, ModelLimits, Problem

    problem = Problem(name="p", statement="s", metric=UP, mutable=["SKILL.md"], runner="run.py",
                      entry="run", model=ModelLimits(),
                      files={"SKILL.md": b"x", "run.py": b"", "evaluate.py": b""})
    base = Experiment(problem=problem.id, strategy={"SKILL.md": "a"},
                      outcome=_outcome(["11000"] * 10))
    noise = Experiment(problem=problem.id, parent=base.id, strategy={"SKILL.md": "b"},
                       outcome=_outcome(["11100"] * 3 + ["11000"] * 7))
    real = Experiment(problem=problem.id, parent=base.id, strategy={"SKILL.md": "c"},
                      outcome=_outcome(["11100"] * 10))
    rows = changelog([base, noise, real], UP, problem=problem)
    assert [row["status"] for row in rows] == ["baseline", "discard", "keep"]
    assert rows[0]["gate"] == ""
    assert rows[1]["gate"].endswith("within noise") and "3 up 0 down" in rows[1]["gate"]
    assert "[+0.200, +0.200]" in rows[2]["gate"] and rows[2]["gate"].endswith("kept")
    plain = changelog([base, noise, real], UP)  # no problem given: plain scores, no column
    assert [row["status"] for row in plain] == ["baseline", "keep", "keep"]
    assert "gate" not in plain[0]


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(
    st.text(max_size=12).map(lambda key: f"case:{key}"),
    st.one_of(st.text(max_size=200), st.integers(min_value=MIN_I64, max_value=MAX_U64),
              st.floats(allow_nan=False, allow_infinity=False), st.booleans()),
    max_size=40,
))
def test_hostile_case_details_never_raise(details: dict[str, float | int | str | bool]) -> None:
    hostile = Outcome(status="ok", score=0.5, details=details)
    ordinary = _outcome(["10101"] * 10)
    for first, second in ((hostile, ordinary), (ordinary, hostile), (hostile, hostile)):
        decision = gate(UP, first, second)
        assert decision is None or 0.0 <= decision.p_value <= 1.0


def test_a_peer_outcome_with_256_details_is_bounded() -> None:
    huge: dict[str, float | int | str | bool] = {
        f"case:{i:03d}": "1" * 200 for i in range(255)}
    huge["case:big"] = MAX_U64  # the largest a record holds (10**400 is no Outcome now)
    decision = gate(UP, Outcome(status="ok", score=1.0, details=huge), _outcome(["0"] * 10))
    assert decision is None  # no case in common with the ordinary outcome
    decision = gate(UP, Outcome(status="ok", score=1.0, details=huge),
                    Outcome(status="ok", score=0.0, details={k: "0" for k in huge}))
    assert decision is not None and decision.cases == 64 and decision.kept


def test_a_loss_beyond_noise_is_called_worse_not_within_noise() -> None:
    def decision(low: float, high: float) -> GateDecision:
        return GateDecision(kept=False, cases=10, wins=0, losses=10, mean_gain=(low + high) / 2,
                            low=low, high=high, p_value=1.0, confidence=0.95)

    assert decision(-0.3, -0.1).describe().endswith(": worse")
    assert decision(-0.3, 0.1).describe().endswith(": within noise")
    assert decision(-0.3, 0.0).describe().endswith(": within noise")


def test_the_gate_judges_packages_that_draw_inputs_per_candidate_and_no_others() -> None:
    """A generator's candidates meet different instances: a lower mean on a lucky draw is not
    enough; most instances, paired by their id (tsp_heuristic: their size), must improve."""
    from node.noise_gate import judge
    from research_dag import Problem

    files = {"strategy.py": b"x = 1\n", "evaluate.py": b"", "gen.py": b""}
    drawn = Problem(name="p", statement="s", metric=DOWN, mutable=["strategy.py"],
                    generator="gen.py", files=files)
    plain = drawn.model_copy(update={"generator": None})

    def ratios(values: list[float]) -> Outcome:
        return Outcome(status="ok", score=sum(values) / len(values),
                       details={f"case:{100 * (i + 1)}": v for i, v in enumerate(values)})

    parent = ratios([1.30, 1.31, 1.29, 1.30, 1.32, 1.31, 1.30, 1.29])
    lucky = ratios([1.10, 1.32, 1.30, 1.31, 1.33, 1.32, 1.31, 1.30])  # one easy instance
    better = ratios([1.25, 1.26, 1.24, 1.25, 1.27, 1.26, 1.25, 1.24])
    assert lucky.score is not None and parent.score is not None and lucky.score < parent.score
    assert judge(plain, lucky, parent) is None  # no generator, no model: scores compared
    decision = judge(drawn, lucky, parent)
    assert decision is not None and not decision.kept and decision.losses == 7
    kept = judge(drawn, better, parent)
    assert kept is not None and kept.kept and kept.wins == 8
    assert judge(drawn, better, Outcome(status="ok", score=1.3)) is None  # parent has no cases
