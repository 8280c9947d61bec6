"""Red team of model-backed and heuristic evaluations (issue 16): what a hostile provider reply,
problem author, strategy or peer could do to a node through the model door, the gateway, the
verifier's spot check, the noise gate and the heuristic harness, each closed as a class with a
property test (docs/security.md, "Model calls" and "A malicious peer")."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recorded_llm import no_sleep

from node.llm import BudgetMeter, ChatProvider, LLMConfig, ModelGateway, StandinProvider
from node.model_evaluations import ModelEvaluations
from node.noise_gate import gate
from node.problem import baseline_files, load_package
from node.trust import outcome_key, outcomes_match
from research_dag import ModelLimits, Outcome, Problem
from sandbox import Evaluator, Runtime
from sandbox.heuristic import MIN_SLICE, fuel_slices

ROOT = Path(__file__).resolve().parent
LANDING = ROOT.parent / "examples" / "skill_landing_copy"
HEURISTIC = ROOT / "fixtures" / "heuristic_leak"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
COMPLETE = json.dumps({"kind": "complete", "system": "Be brief.", "user": "name: Lamp",
                       "max_tokens": 16}).encode()


@pytest.fixture(scope="module")
def landing() -> Problem:
    return load_package(LANDING).model_copy(update={"model": ModelLimits()})


# -- A provider's reply: whatever an OpenAI-compatible server sends, the door answers ---------

def _server(body: bytes, headers: dict[str, str]) -> ModelGateway:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers=headers)

    config = LLMConfig("openai", "m", "", "http://127.0.0.1:9/v1", max_retries=0,
                       money_budget_usd=1.0)
    chat = ChatProvider(config, httpx.MockTransport(handler), no_sleep)
    return ModelGateway(chat, BudgetMeter(config))


counts = st.one_of(
    st.integers(-(2**80), 2**80), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2), st.booleans())


@SETTINGS
@given(counts, counts, st.text(max_size=40))
def test_any_usage_a_server_reports_is_an_answer_or_a_provider_failure(
    landing: Problem, prompt_tokens: Any, completion_tokens: Any, text: str
) -> None:
    """A server reporting -5, 1e30, 2^70 or Infinity prompt tokens made the gateway raise a
    ValidationError or an ExceptionGroup(OverflowError) out of the door into the node (and -5
    refunded the run's money budget). Now: an answer, or a provider failure; never a raise,
    never a negative charge."""
    body = json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": prompt_tokens,
                                 "completion_tokens": completion_tokens}}).encode()
    gateway = _server(body, {"content-type": "application/json"})
    door = gateway.session(landing)
    answer = json.loads(door.answer(COMPLETE))
    assert "text" in answer or answer["error"] == "model"
    usage, budget = gateway.usage, gateway.budget
    assert budget is not None and budget.spent.cost_usd >= 0
    assert usage.input_tokens >= 0 and usage.output_tokens >= 0 and usage.cost_usd >= 0
    if "text" in answer:
        (call,) = door.transcript().calls
        assert call.input_tokens >= 0 and call.output_tokens >= 0


@SETTINGS
@given(st.binary(max_size=64), st.sampled_from(["gzip", "deflate", "identity", "br, gzip"]))
def test_a_body_the_client_cannot_decode_is_a_provider_failure(
    landing: Problem, body: bytes, encoding: str
) -> None:
    """A bad gzip body raised httpx.DecodingError (not a TransportError) out of the client,
    through the door, into the node."""
    gateway = _server(body, {"content-type": "application/json", "content-encoding": encoding})
    answer = json.loads(gateway.session(landing).answer(COMPLETE))
    assert answer.get("error") == "model" or "text" in answer


# -- A heuristic package's weights: any finite numbers, no host arithmetic overflows -----------

weights = st.lists(st.floats(min_value=0, max_value=1.7e308, allow_subnormal=True), min_size=1,
                   max_size=64).filter(lambda ws: sum(ws) > 0 or any(w > 0 for w in ws))


@settings(max_examples=300, deadline=None)
@given(st.integers(10_000_000, 10**12), weights)
def test_fuel_slices_are_exact_bounded_shares_for_any_weights(fuel: int, ws: list[float]) -> None:
    slices = fuel_slices(fuel, ws)
    assert len(slices) == len(ws)
    assert all(MIN_SLICE <= share <= max(fuel, MIN_SLICE) for share in slices)
    assert sum(slices) <= fuel + MIN_SLICE * len(ws)
    largest = ws.index(max(ws))
    assert slices[largest] >= fuel // len(ws) or slices[largest] == MIN_SLICE


def test_integer_weights_keep_their_exact_share() -> None:
    assert fuel_slices(2_000_000_000, [225.0 + 200, 144 + 200]) == [
        2_000_000_000 * 425 // 769, 2_000_000_000 * 344 // 769]


@pytest.fixture
def huge_weights(tmp_path: Path) -> Problem:
    package = tmp_path / "huge"
    shutil.copytree(HEURISTIC, package)
    harness = package / "harness.py"
    harness.write_text(harness.read_text().replace('return instance["n"] ** 2 + 200',
                                                   "return 1e308"))
    return load_package(package)


def test_a_harness_weighing_instances_1e308_is_evaluated_not_a_host_error(
    runtime: Runtime, huge_weights: Problem
) -> None:
    """`fuel * 1e308 / inf` was NaN and `int(NaN)` raised in the host: a peer's problem with
    such a harness stopped every node that evaluated it."""
    with Evaluator(runtime, huge_weights) as evaluator:
        outcome = evaluator.evaluate(baseline_files(huge_weights))
    assert outcome.status == "ok" and outcome.score is not None and math.isfinite(outcome.score)


# -- A peer's claim: what a node acts on is what the replay reproduced -------------------------

detail_values = st.one_of(st.integers(-2, 2), st.floats(-2, 2, allow_nan=False), st.booleans(),
                          st.sampled_from(["1", "0", "1111", "0101", "x"]))
claimed_outcomes = st.builds(
    Outcome, status=st.sampled_from(["ok", "crash"]), score=st.sampled_from([None, 0.5]),
    strategy_fuel=st.just(7), evaluator_fuel=st.just(9),
    details=st.dictionaries(st.sampled_from(["case:a", "case:b", "out:a", "tours"]),
                            detail_values, max_size=4))


@settings(max_examples=400, deadline=None)
@given(claimed_outcomes, claimed_outcomes)
def test_outcomes_match_only_when_every_detail_does(a: Outcome, b: Outcome) -> None:
    """The noise gate pairs on a verified claim's `case:<id>` details and the LLM mutator
    reads its `out:<id>`; `outcomes_match` compared status, score, items and fuel only, so a
    claim whose score replayed bit for bit verified with any cases its author wrote."""
    same = outcomes_match(a, b)
    assert same == (outcome_key(a) is not None and outcome_key(a) == outcome_key(b))
    if a.details.keys() != b.details.keys() or any(
            type(a.details[k]) is not type(b.details[k]) or a.details[k] != b.details[k]
            for k in a.details):
        assert not same
    assert outcomes_match(a, a.model_copy()) == (a.status != "timeout")


def test_a_claim_with_forged_cases_is_disputed_although_its_score_replays(
    runtime: Runtime,
) -> None:
    problem = load_package(LANDING)
    with Evaluator(runtime, problem) as evaluator:
        run = ModelEvaluations(evaluator, problem, ModelGateway(StandinProvider()))
        honest = run(baseline_files(problem))
        cases = {key: "1" * len(problem.checklist) for key in honest.outcome.details
                 if key.startswith("case:")}
        assert cases and honest.outcome.status == "ok"
        forged = honest.outcome.model_copy(
            update={"details": {**honest.outcome.details, **cases}})
        assert forged.score == honest.outcome.score  # the score still replays bit for bit
        check = run.verify(baseline_files(problem), forged, honest.transcript, "me/claim")
        assert not check.match
        assert run.verify(baseline_files(problem), honest.outcome, honest.transcript,
                          "me/claim").match
    # Before, the forged claim verified and the gate paired our candidates on its cases: every
    # case "all checks pass" leaves nothing any candidate can gain, so none was ever kept.
    decision = gate(problem.metric, honest.outcome, forged)
    assert decision is None or not decision.kept
