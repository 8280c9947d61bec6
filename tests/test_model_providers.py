"""The gateway's real providers against recorded replies over httpx.MockTransport (no API is
reachable here): Anthropic and OpenAI-compatible replies, judge verdicts, malformed replies,
refusals, 429 and 5xx with retries, timeouts and a spent budget, each as the guest sees it."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from recorded_llm import message, no_sleep, openai_completion, status

from node.llm import (
    BudgetMeter,
    ChatProvider,
    LLMConfig,
    ModelGateway,
    Provider,
    judge_verdict,
)
from node.model_evaluations import ModelEvaluations
from node.problem import baseline_files, load_package
from research_dag import ModelLimits
from sandbox import Evaluator, Runtime

KEY = "sk-ant-api03-SECRETSECRETSECRET"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "skill_landing_copy"
Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
LIMITS = ModelLimits(max_calls=8, max_tokens=100_000, max_prompt_bytes=4096)
PROVIDERS: list[Provider] = ["anthropic", "openai"]


def config(provider: Provider, **overrides: Any) -> LLMConfig:
    if provider == "anthropic":
        base = LLMConfig("anthropic", "claude-sonnet-5-5", KEY)
    else:
        base = LLMConfig("openai", "qwen2.5-coder:7b", "", "http://localhost:11434/v1")
    return LLMConfig(**{**base.__dict__, "max_retries": 2, **overrides})


def replies(*answers: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1]

    return handler, seen


def ok(provider: Provider, text: str, tokens: tuple[int, int] = (120, 30)) -> httpx.Response:
    return message(text, tokens=tokens) if provider == "anthropic" else openai_completion(
        text, tokens=tokens)


def gateway(provider: Provider, handler: Handler, budget: BudgetMeter | None = None,
            **overrides: Any) -> ModelGateway:
    chat = ChatProvider(config(provider, **overrides), httpx.MockTransport(handler), no_sleep)
    return ModelGateway(chat, budget)


def ask(gate: ModelGateway, kind: str = "complete", **fields: Any) -> tuple[dict[str, Any], Any]:
    """One call through a fresh evaluation's door: the answer the guest reads, and the door."""
    door = gate.session(_problem(gate))
    request = {"kind": kind, **fields} if fields else (
        {"kind": "complete", "system": "Be brief.", "user": "name: Lamp", "max_tokens": 64}
        if kind == "complete" else {"kind": "judge", "question": "Ends with a CTA?",
                                    "output": "Buy now."})
    answer = json.loads(door.answer(json.dumps(request).encode()))
    return answer, door


def _problem(gate: ModelGateway) -> Any:
    problem = load_package(EXAMPLE)
    return problem.model_copy(update={"model": LIMITS})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_recorded_reply_reaches_the_guest_and_the_transcript(provider: Provider) -> None:
    handler, seen = replies(ok(provider, "Lumo Desk Lamp, $49. Order yours today."))
    gate = gateway(provider, handler)
    answer, door = ask(gate)
    assert answer == {"text": "Lumo Desk Lamp, $49. Order yours today."}
    (call,) = door.calls
    assert (call.provider, call.model, call.input_tokens, call.output_tokens) == (
        provider, config(provider).model, 120, 30)
    body = json.loads(seen[0].content)
    assert body["max_tokens"] == 64
    expected = (120 * 2 + 30 * 10) / 1e6 if provider == "anthropic" else 0.0
    assert gate.usage.cost_usd == pytest.approx(expected) and gate.usage.calls == 1


@pytest.mark.parametrize(("reply", "verdict"), [
    ("Yes.", True), ("yes, it ends with one", True), ("**Yes**", True), ("No.", False),
    ("Not really; yes would be wrong", False), ("", False), ("Yesterday", False),
])
def test_a_judge_reply_is_a_verdict_the_same_way_on_every_replay(reply: str, verdict: bool) -> None:
    assert judge_verdict(reply) is verdict
    handler, seen = replies(ok("openai", reply))
    answer, _ = ask(gateway("openai", handler), "judge")
    assert answer == {"verdict": verdict, "text": reply}
    assert "Buy now." in json.loads(seen[0].content)["messages"][1]["content"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limits_and_server_errors_are_retried(provider: Provider) -> None:
    handler, seen = replies(status(429, "rate_limit_error", "slow down", retry_after="1"),
                            status(529, "overloaded_error", "overloaded"),
                            ok(provider, "fine"))
    answer, door = ask(gateway(provider, handler))
    assert answer == {"text": "fine"} and len(seen) == 3 and door.failure is None


@pytest.mark.parametrize(("reply", "why"), [
    (status(429, "rate_limit_error", "slow down"), "LLMRateLimited"),
    (status(503, "api_error", "down"), "LLMUnavailable"),
    (httpx.Response(200, text="<html>proxy login</html>"), "LLMBadReply"),
    (httpx.Response(200, json={"choices": []}), "LLMBadReply"),
    (status(401, "authentication_error", "bad key"), "LLMAuthError"),
])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_that_gives_no_reply_fails_the_evaluation_not_the_node(
    provider: Provider, reply: httpx.Response, why: str
) -> None:
    handler, _ = replies(reply)
    answer, door = ask(gateway(provider, handler))
    assert answer["error"] == "model" and why in answer["message"]
    assert door.failure is not None and (door.failure.kind, door.failure.reason) == (
        "error", "provider")
    again, _ = ask(gateway(provider, handler))  # a fresh door: the node goes on
    assert again["error"] == "model"


@pytest.mark.parametrize("body", [
    b"[" * 200_000,  # json.loads recursed past the interpreter's limit: a RecursionError
    b'{"choices": [' * 50_000,
    b'{"choices": [{"message": {"content": "' + b"a" * (8 * 1024 * 1024) + b'"}}]}',
])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_reply_nested_too_deeply_or_too_large_fails_the_call_not_the_node(
    provider: Provider, body: bytes
) -> None:
    """Whatever bytes a provider (or whatever answers at its address) sends, the call fails
    as a bad reply: a body nested 100,000 deep raised RecursionError through the gateway (the
    node's task, not the call, failed), and an OpenAI-compatible body was read whole however
    large (MAX_REPLY_BYTES now)."""
    handler, _ = replies(httpx.Response(200, content=body,
                                        headers={"content-type": "application/json"}))
    answer, door = ask(gateway(provider, handler, max_retries=0))
    assert answer["error"] == "model" and "LLMBadReply" in answer["message"]
    assert door.failure is not None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refusals_fail_the_call(provider: Provider) -> None:
    refusal = message("I can't help with that.", stop_reason="refusal") if provider == (
        "anthropic") else openai_completion("no", finish="content_filter")
    handler, _ = replies(refusal)
    answer, door = ask(gateway(provider, handler, max_retries=0))
    assert "LLMRefused" in answer["message"] and door.failure is not None


def test_a_model_that_never_answers_times_out() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    answer, door = ask(gateway("openai", hang, timeout_s=0.05, max_retries=1))
    assert "LLMTimeout" in answer["message"] and door.failure is not None


def test_calls_after_the_money_budget_is_spent_are_refused() -> None:
    handler, seen = replies(ok("anthropic", "copy", tokens=(100_000, 10_000)))
    budget = BudgetMeter(config("anthropic", money_budget_usd=0.25))
    gate = gateway("anthropic", handler, budget)
    first, _ = ask(gate)
    assert first == {"text": "copy"}  # $0.30: the call that crossed the line is paid for
    second, door = ask(gate, "complete", system="s", user="other", max_tokens=5)
    assert second["error"] == "model" and door.failure is not None
    assert door.failure.reason == "budget" and len(seen) == 1


def test_an_evaluation_with_recorded_replies_replays_bit_for_bit(runtime: Runtime) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("Question:"):
            return openai_completion("yes")
        name = prompt.splitlines()[0].removeprefix("name: ")
        return openai_completion(f"{name}: made for you. Order yours today.")

    problem = load_package(EXAMPLE)
    with Evaluator(runtime, problem) as evaluator:
        run = ModelEvaluations(evaluator, problem, gateway("openai", handler))
        files = baseline_files(problem)
        done = run(files)
        assert done.outcome.status == "ok", done.outcome.stderr_tail
        assert {call.provider for call in done.transcript.calls} == {"openai"}
        assert run.replay(files, done.transcript) == done.outcome


def test_a_call_in_flight_gives_up_when_its_run_is_stopped() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    gate = gateway("openai", hang, timeout_s=600.0, max_retries=0)
    door = gate.session(_problem(gate))
    frame = json.dumps({"kind": "judge", "question": "q", "output": "o"}).encode()
    answer = json.loads(door.answer(frame, stopped=lambda: True))  # a Ctrl-C, say
    assert answer["error"] == "model" and "stopped" in answer["message"]
