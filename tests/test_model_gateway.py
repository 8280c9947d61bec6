"""Model calls from the sandbox: the crossing (the runtime's door), the gateway's per-evaluation
limits (a runner that tries 10,000 calls, a 1 MB prompt, calls after the budget is spent gets a
recorded failure, not a hung node), the cache, transcripts, replay and the spot check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.llm import (
    BudgetMeter,
    EditingSession,
    LLMConfig,
    ModelGateway,
    StandinProvider,
    parse_request,
)
from node.model_evaluations import ModelEvaluations
from node.problem import baseline_files, load_package
from node.trust import detection_odds, spot_disputes
from research_dag import (
    ModelLimits,
    Outcome,
    Problem,
    SpotCheck,
    Transcript,
    decode_record,
    encode_record,
)
from sandbox import Evaluator, Runtime

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "skill_landing_copy"

RUNNER = '''
import json
import swarm_model

def run(public_dir):
    with open("/strategy/plan.txt", encoding="utf-8") as handle:
        plan = handle.read().split()
    how = plan[0]
    if how == "echo":
        return [swarm_model.complete("Name the product.", "name: Lamp\\nprice: 9", 50)]
    if how == "many":
        return [swarm_model.complete("s", f"u{i}", 5) for i in range(10_000)]
    if how == "huge":
        return [swarm_model.complete("s", "x" * 1_000_000, 5)]
    if how == "swallow":
        out = []
        for i in range(100):
            try:
                out.append(swarm_model.complete("s", f"u{i}", 5))
            except swarm_model.ModelLimit:
                pass
        return out
    if how == "raw":
        import _host
        answers = []
        for frame in (b"\\xff\\xfe", b"[" * 5000, b'{"kind": "complete"}', b"{}"):
            answers.append(_host.call(frame).decode())
        return answers
    if how == "judge":
        return [swarm_model.judge("Does it end with a call to action?", "Buy now.")]
    return []
'''

EVALUATE = '''
def evaluate(output, public_dir, private_dir):
    return {"score": float(len(output)), "details": {"first": str(output[:1])[:150]}}
'''

TOML = '''
name = "model_door_test"
statement = "A runner that asks a model."
mutable = ["plan.txt"]
runner = "run.py"
entry = "run"

[metric]
name = "calls"
direction = "maximize"

[budget]
fuel = 20_000_000_000
memory_mb = 128
wall_s = 60

[model]
max_calls = 40
max_tokens = 40_000
max_prompt_bytes = 16_384
'''


@pytest.fixture(scope="module")
def problem(tmp_path_factory: pytest.TempPathFactory) -> Problem:
    root = tmp_path_factory.mktemp("package")
    (root / "problem.toml").write_text(TOML)
    (root / "run.py").write_text(RUNNER)
    (root / "evaluate.py").write_text(EVALUATE)
    (root / "plan.txt").write_text("echo\n")
    (root / "data" / "public").mkdir(parents=True)
    (root / "data" / "public" / "x.txt").write_text("x")
    (root / "data" / "private").mkdir(parents=True)
    (root / "data" / "private" / "y.txt").write_text("y")
    return load_package(root)


@pytest.fixture(scope="module")
def evaluator(runtime: Runtime, problem: Problem) -> Iterator[Evaluator]:
    with Evaluator(runtime, problem) as evaluator:
        yield evaluator


def evaluations(evaluator: Evaluator, problem: Problem, budget: BudgetMeter | None = None
                ) -> ModelEvaluations:
    return ModelEvaluations(evaluator, problem, ModelGateway(StandinProvider(), budget))


def test_a_runner_calls_the_model_through_the_door_and_the_call_is_transcribed(
    evaluator: Evaluator, problem: Problem
) -> None:
    done = evaluations(evaluator, problem)({"plan.txt": "echo"})
    assert done.outcome.status == "ok", done.outcome.stderr_tail
    assert done.outcome.score == 1.0
    (call,) = done.transcript.calls
    assert (call.kind, call.provider, call.model, call.cached) == (
        "complete", "standin", "standin-1", False)
    assert "lamp" in call.response.lower() and call.input_tokens > 0
    assert decode_record(encode_record(done.transcript)) == done.transcript


def test_ten_thousand_calls_stop_at_the_limit_as_a_recorded_failure(
    evaluator: Evaluator, problem: Problem
) -> None:
    done = evaluations(evaluator, problem)({"plan.txt": "many"})
    assert done.outcome.status == "crash"
    assert done.outcome.details["model_limit"] == "calls"
    assert "40 model calls per evaluation" in done.outcome.stderr_tail
    assert len(done.transcript.calls) == 40 and done.transcript.stopped == "calls"


def test_a_megabyte_prompt_is_refused_as_a_recorded_failure(
    evaluator: Evaluator, problem: Problem
) -> None:
    done = evaluations(evaluator, problem)({"plan.txt": "huge"})
    assert (done.outcome.status, done.outcome.details["model_limit"]) == ("crash", "prompt_bytes")
    assert done.transcript.calls == []


def test_a_runner_that_swallows_the_limit_still_fails(
    evaluator: Evaluator, problem: Problem
) -> None:
    done = evaluations(evaluator, problem)({"plan.txt": "swallow"})
    assert done.outcome.status == "crash" and done.outcome.score is None
    assert done.outcome.details["model_limit"] == "calls"


def test_calls_after_the_runs_budget_is_spent_fail_the_evaluation_unreproducibly(
    evaluator: Evaluator, problem: Problem
) -> None:
    budget = BudgetMeter(LLMConfig("openai", "m", token_budget=10))
    run = evaluations(evaluator, problem, budget)
    first = run({"plan.txt": "echo"})  # spends the budget
    assert first.outcome.status == "ok"
    second = run({"plan.txt": "judge"})
    assert second.outcome.status == "timeout"  # not the candidate's verdict: never verified
    assert second.outcome.details["model_error"] == "budget"


def test_hostile_frames_through_the_raw_door_fail_the_evaluation_not_the_node(
    evaluator: Evaluator, problem: Problem
) -> None:
    done = evaluations(evaluator, problem)({"plan.txt": "raw"})
    assert done.outcome.status == "crash"
    assert done.outcome.details["model_limit"] == "request"


def test_identical_requests_of_a_run_come_from_the_cache_and_score_the_same(
    evaluator: Evaluator, problem: Problem
) -> None:
    gateway = ModelGateway(StandinProvider())
    run = ModelEvaluations(evaluator, problem, gateway)
    first, second = run({"plan.txt": "echo"}), run({"plan.txt": "echo"})
    assert second.outcome == first.outcome
    assert [call.cached for call in second.transcript.calls] == [True]
    assert gateway.usage.calls == 1 and gateway.usage.cached == 1


def test_a_replay_with_the_recorded_responses_matches_bit_for_bit(
    evaluator: Evaluator, problem: Problem
) -> None:
    run = evaluations(evaluator, problem)
    for plan in ("echo", "many", "judge"):
        done = run({"plan.txt": plan})
        assert run.replay({"plan.txt": plan}, done.transcript) == done.outcome


def test_a_replay_that_leaves_the_transcript_mismatches(
    evaluator: Evaluator, problem: Problem
) -> None:
    run = evaluations(evaluator, problem)
    done = run({"plan.txt": "echo"})
    other = run.replay({"plan.txt": "judge"}, done.transcript)
    assert other.status == "timeout" and other.details["model_error"] == "replay"
    padded = done.transcript.model_copy(update={"calls": done.transcript.calls * 2})
    assert run.replay({"plan.txt": "echo"}, padded).details["model_error"] == "replay"


@pytest.fixture(scope="module")
def landing(runtime: Runtime) -> Iterator[tuple[Problem, Evaluator]]:
    problem = load_package(EXAMPLE)
    with Evaluator(runtime, problem) as evaluator:
        yield problem, evaluator


def test_an_honest_claim_is_verified_and_an_edited_transcript_is_disputed(
    landing: tuple[Problem, Evaluator],
) -> None:
    problem, evaluator = landing
    gateway = ModelGateway(StandinProvider())
    run = ModelEvaluations(evaluator, problem, gateway, spot_samples=20)
    files = baseline_files(problem)
    honest = run(files)
    check = run.verify(files, honest.outcome, honest.transcript, "verifier/claim")
    assert check.match and check.spot_check is not None
    assert check.spot_check.recorded_better == 0
    # The liar edits one response to pass every check, and scores the edited transcript
    # honestly, so that the replay matches: only the spot check can tell.
    liar = EditingSession(gateway, problem, {0: "Lumo Desk Lamp, $49: light that "
                                                   "follows your evening. Order yours today."})
    claimed = evaluator.evaluate(files, liar)
    edited = liar.transcript()
    assert claimed.status == "ok" and (claimed.score or 0) > (honest.outcome.score or 0)
    assert run.replay(files, edited) == claimed
    check = run.verify(files, claimed, edited, "verifier/claim")
    assert not check.match and check.spot_check is not None
    assert check.spot_check.recorded_better == 1
    assert check.outcome.score == honest.outcome.score  # the fresh response, scored


def test_the_sign_test_needs_more_than_one_win_from_a_model_that_varies() -> None:
    spot = SpotCheck(sampled=4, recorded_better=1, fresh_better=0, model="m", provider="p")
    assert spot_disputes(spot, exact=True) and not spot_disputes(spot, exact=False)
    five = spot.model_copy(update={"sampled": 5, "recorded_better": 5})
    assert spot_disputes(five, exact=False)
    assert detection_odds(10, 1, 1) == pytest.approx(0.1)
    assert detection_odds(10, 3, 4) == pytest.approx(1 - 35 / 210)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_frames_never_raise(frame: bytes) -> None:
    parsed = parse_request(frame)
    assert isinstance(parsed, str) or parsed.kind in ("complete", "judge")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=64), st.text(max_size=64), st.integers(-5, 2_000_000))
def test_any_request_parses_or_is_refused(system: str, user: str, tokens: int) -> None:
    import json

    frame = json.dumps({"kind": "complete", "system": system, "user": user,
                        "max_tokens": tokens}).encode()
    parsed = parse_request(frame)
    if isinstance(parsed, str):
        assert not 0 < tokens <= 1_000_000 or any(0xD800 <= ord(c) <= 0xDFFF
                                                 for c in system + user)
    else:
        assert (parsed.first, parsed.second, parsed.max_tokens) == (system, user, tokens)


def test_limits_default_when_a_problem_declares_none() -> None:
    assert ModelLimits().max_calls == 64
    assert Transcript(problem="a" * 64).calls == []
    assert Outcome(status="ok").details == {}
