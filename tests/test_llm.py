"""LLM clients against recorded-looking HTTP replies: replies, errors, retries, budgets, config."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from recorded_llm import message, openai_completion

from node.llm import (
    AnthropicClient,
    BudgetMeter,
    ChatClient,
    ChatMessage,
    LLMAuthError,
    LLMBadReply,
    LLMBadRequest,
    LLMBudgetExceeded,
    LLMConfig,
    LLMNotConfigured,
    LLMRateLimited,
    LLMRefused,
    LLMTimeout,
    LLMUnavailable,
    OpenAICompatibleClient,
    Provider,
    open_client,
)
from node.mutators import Usage

KEY = "sk-ant-api03-SECRETSECRETSECRET"
Reply = httpx.Response | Callable[[httpx.Request], Awaitable[httpx.Response]]


def anthropic_message(
    text: str, stop_reason: str = "end_turn", tokens: tuple[int, int] = (1200, 300)
) -> httpx.Response:
    return message(text, stop_reason, tokens)


def error_reply(
    provider: Provider, status: int, kind: str, message: str, **headers: str
) -> httpx.Response:
    if provider == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return httpx.Response(
        status, json=body, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


def ok_reply(provider: Provider, text: str = "hello", **kwargs: Any) -> httpx.Response:
    return (anthropic_message if provider == "anthropic" else openai_completion)(text, **kwargs)


class Script:
    """A MockTransport handler that plays replies in order and records every request."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        return reply if isinstance(reply, httpx.Response) else await reply(request)

    def body(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[index].content)  # type: ignore[no-any-return]


async def hang(request: httpx.Request) -> httpx.Response:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def config(provider: Provider, **overrides: Any) -> LLMConfig:
    if provider == "anthropic":
        base = LLMConfig("anthropic", "claude-sonnet-5-5", KEY)
    else:
        base = LLMConfig("openai", "qwen2.5-coder:7b", KEY, "http://localhost:11434/v1")
    fields = {**base.__dict__, "max_retries": 2, "backoff_base_s": 0.5, **overrides}
    return LLMConfig(**fields)


@asynccontextmanager
async def client_for(
    provider: Provider, handler: Any, sleep: Sleeps | None = None, **overrides: Any
) -> AsyncIterator[AnthropicClient | OpenAICompatibleClient]:
    transport = httpx.MockTransport(handler)
    cls = AnthropicClient if provider == "anthropic" else OpenAICompatibleClient
    async with cls(config(provider, **overrides), transport, sleep=sleep or Sleeps()) as client:
        yield client


PROVIDERS: list[Provider] = ["anthropic", "openai"]
USER = [ChatMessage("user", "Propose one change.")]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_good_reply_carries_text_usage_and_cost(provider: Provider) -> None:
    script = Script(ok_reply(provider, "the answer", tokens=(1200, 300)))
    async with client_for(provider, script) as client:
        reply = await client.complete("You are terse.", USER, max_tokens=512)
    assert reply.text == "the answer"
    assert reply.stop_reason == "end_turn"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (1200, 300)
    # Sonnet-class default: $2 / $10 per million tokens; a local endpoint is free.
    expected = (1200 * 2 + 300 * 10) / 1e6 if provider == "anthropic" else 0.0
    assert reply.usage.cost_usd == pytest.approx(expected)
    body = script.body()
    assert body["max_tokens"] == 512
    assert body["model"] == client.config.model
    if provider == "anthropic":
        assert body["system"] == "You are terse."
        assert body["messages"] == [{"role": "user", "content": "Propose one change."}]
        assert script.requests[0].url == "https://api.anthropic.com/v1/messages"
    else:
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
        assert script.requests[0].url == "http://localhost:11434/v1/chat/completions"
    assert KEY in script.requests[0].headers["authorization"]


async def test_openai_client_sends_no_key_when_none_is_configured() -> None:
    script = Script(openai_completion("hi", tokens=(5, 1)))
    async with client_for("openai", script, api_key="") as client:
        await client.complete("s", USER, 16)
    assert "authorization" not in script.requests[0].headers


async def test_configured_prices_override_the_defaults() -> None:
    script = Script(openai_completion("hi", tokens=(1_000_000, 500_000)))
    async with client_for(
        "openai", script, input_usd_per_mtok=0.15, output_usd_per_mtok=0.6
    ) as client:
        reply = await client.complete("s", USER, 16)
    assert reply.usage.cost_usd == pytest.approx(0.15 + 0.3)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rate_limit_honours_retry_after_then_succeeds(provider: Provider) -> None:
    limited = error_reply(
        provider,
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
        retry_after="7",
    )
    script = Script(limited, ok_reply(provider, "finally"))
    sleeps = Sleeps()
    async with client_for(provider, script, sleeps) as client:
        reply = await client.complete("s", USER, 64)
    assert reply.text == "finally"
    assert len(script.requests) == 2
    assert sleeps.delays == [7.0]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_overloaded_and_server_errors_back_off_exponentially(provider: Provider) -> None:
    script = Script(
        error_reply(provider, 529, "overloaded_error", "Overloaded"),
        error_reply(provider, 500, "api_error", "Internal server error"),
        ok_reply(provider, "up again"),
    )
    sleeps = Sleeps()
    async with client_for(provider, script, sleeps, backoff_base_s=0.5) as client:
        reply = await client.complete("s", USER, 64)
    assert reply.text == "up again"
    assert len(script.requests) == 3
    assert sleeps.delays == [0.5, 1.0]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_persistent_rate_limit_gives_up_after_max_retries(provider: Provider) -> None:
    script = Script(
        error_reply(provider, 429, "rate_limit_error", "slow down", retry_after_ms="250")
    )
    sleeps = Sleeps()
    async with client_for(provider, script, sleeps, max_retries=2) as client:
        with pytest.raises(LLMRateLimited) as caught:
            await client.complete("s", USER, 64)
    assert len(script.requests) == 3
    assert sleeps.delays == [0.25, 0.25]
    assert caught.value.retryable
    assert caught.value.attempts == 3
    assert caught.value.retry_after == 0.25


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_auth_error_is_not_retried_and_hides_the_key(provider: Provider) -> None:
    script = Script(error_reply(provider, 401, "authentication_error", "invalid x-api-key"))
    async with client_for(provider, script) as client:
        with pytest.raises(LLMAuthError) as caught:
            await client.complete("s", USER, 64)
    assert len(script.requests) == 1
    assert not caught.value.retryable
    assert "401" in str(caught.value)
    assert "invalid x-api-key" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_rejected_request_is_not_retried(provider: Provider) -> None:
    script = Script(
        error_reply(provider, 400, "invalid_request_error", "prompt is too long: 210000 tokens")
    )
    async with client_for(provider, script) as client:
        with pytest.raises(LLMBadRequest, match="prompt is too long"):
            await client.complete("s", USER, 64)
    assert len(script.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_hanging_endpoint_times_out_within_the_configured_deadline(
    provider: Provider,
) -> None:
    script = Script(hang)
    start = trio.current_time()
    async with client_for(provider, script, timeout_s=0.2, max_retries=1) as client:
        with pytest.raises(LLMTimeout, match=r"no reply within 0\.2 s"):
            await client.complete("s", USER, 64)
    assert len(script.requests) == 2
    assert trio.current_time() - start < 2.0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unreachable_endpoint_is_unavailable_after_retries(provider: Provider) -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    script = Script(refuse)
    async with client_for(provider, script, max_retries=1) as client:
        with pytest.raises(LLMUnavailable) as caught:
            await client.complete("s", USER, 64)
    assert len(script.requests) == 2
    assert caught.value.retryable


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_refusal_is_an_error_that_still_costs_tokens(provider: Provider) -> None:
    finish = "refusal" if provider == "anthropic" else "content_filter"
    reply = (
        anthropic_message("I can't help with that.", finish, (900, 12))
        if provider == "anthropic"
        else openai_completion("I can't help with that.", finish, (900, 12))
    )
    async with client_for(provider, Script(reply)) as client:
        with pytest.raises(LLMRefused) as caught:
            await client.complete("s", USER, 64)
    assert caught.value.usage.input_tokens == 900
    assert caught.value.usage.output_tokens == 12


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_reply_that_is_not_a_chat_reply_is_a_bad_reply(provider: Provider) -> None:
    page = httpx.Response(
        200, text="<html>upstream gateway</html>", headers={"content-type": "text/html"}
    )
    async with client_for(provider, Script(page)) as client:
        with pytest.raises(LLMBadReply):
            await client.complete("s", USER, 64)


async def test_openai_reply_without_choices_is_a_bad_reply() -> None:
    reply = httpx.Response(
        200, json={"id": "chatcmpl-1", "object": "chat.completion", "choices": []}
    )
    async with client_for("openai", Script(reply)) as client:
        with pytest.raises(LLMBadReply, match="not a chat completion"):
            await client.complete("s", USER, 64)


async def test_ollama_style_error_body_is_read() -> None:
    reply = httpx.Response(404, json={"error": "model 'qwen9:1b' not found, try pulling it first"})
    async with client_for("openai", Script(reply)) as client:
        with pytest.raises(LLMBadRequest, match="not found, try pulling it"):
            await client.complete("s", USER, 64)


async def test_open_client_picks_the_provider_and_closes_it() -> None:
    script = Script(anthropic_message("hi"))
    async with open_client(config("anthropic"), httpx.MockTransport(script)) as client:
        assert isinstance(client, AnthropicClient)
        chat: ChatClient = client
        assert (await chat.complete("s", USER, 8)).text == "hi"
    assert client._sdk.is_closed()
    plain = open_client(config("openai"))  # without `async with`, as node/cli/options.py uses it
    assert isinstance(plain, OpenAICompatibleClient)
    await plain.aclose()
    assert plain._http.is_closed
    with trio.CancelScope() as scope:
        scope.cancel()
        async with open_client(config("openai")) as cancelled:
            await trio.sleep(1)
    assert isinstance(cancelled, OpenAICompatibleClient)
    assert cancelled._http.is_closed  # the close is shielded from the cancellation


def test_config_repr_and_str_hide_the_key() -> None:
    for provider in PROVIDERS:
        text = f"{config(provider)!r} {config(provider)!s}"
        assert KEY not in text
        assert "claude-sonnet-5-5" in text or "qwen2.5-coder" in text


def test_from_env_anthropic() -> None:
    made = LLMConfig.from_env("anthropic", env={"ANTHROPIC_API_KEY": f" {KEY}\n"})
    assert (made.provider, made.model, made.api_key) == ("anthropic", "claude-sonnet-5-5", KEY)
    env = {"ANTHROPIC_API_KEY": KEY, "SWARM_LLM_MODEL": "claude-opus-5"}
    assert LLMConfig.from_env("anthropic", env=env).model == "claude-opus-5"
    assert (
        LLMConfig.from_env("anthropic", model="claude-haiku-5-5", env=env).model
        == "claude-haiku-5-5"
    )
    with pytest.raises(LLMNotConfigured, match="ANTHROPIC_API_KEY is not set"):
        LLMConfig.from_env("anthropic", env={"OPENAI_API_KEY": "x"})


def test_from_env_openai_compatible() -> None:
    local = LLMConfig.from_env(
        "openai",
        env={"OPENAI_BASE_URL": "http://localhost:11434/v1", "SWARM_LLM_MODEL": "qwen2.5-coder:7b"},
    )
    assert (local.base_url, local.api_key, local.model) == (
        "http://localhost:11434/v1",
        "",
        "qwen2.5-coder:7b",
    )
    assert local.cost_usd(10**6, 10**6) == 0.0
    hosted = LLMConfig.from_env("openai", model="gpt-5-mini", env={"OPENAI_API_KEY": "sk-proj-x"})
    assert hosted.base_url == "https://api.openai.com/v1"
    with pytest.raises(LLMNotConfigured, match="OPENAI_BASE_URL"):
        LLMConfig.from_env("openai", model="m", env={})
    with pytest.raises(LLMNotConfigured, match="SWARM_LLM_MODEL"):
        LLMConfig.from_env("openai", env={"OPENAI_BASE_URL": "http://127.0.0.1:8080/v1"})


def test_budget_meter_refuses_once_tokens_or_money_are_spent() -> None:
    tokens = BudgetMeter(config("anthropic", token_budget=1000))
    tokens.check()
    tokens.add(Usage(600, 300, 0.0))
    tokens.check()
    tokens.add(Usage(100, 0, 0.0))
    with pytest.raises(LLMBudgetExceeded, match="1000 of 1000 tokens"):
        tokens.check()
    money = BudgetMeter(config("anthropic", money_budget_usd=0.01))
    money.add(Usage(1200, 300, 0.0054))
    money.check()
    money.add(Usage(1200, 300, 0.0054))
    with pytest.raises(LLMBudgetExceeded, match="money budget"):
        money.check()
    assert money.calls == 2
    assert money.spent.input_tokens == 2400


@pytest.mark.parametrize("first", ["node.llm", "node.mutators", "node.mutators.llm"])
def test_importing_llm_modules_does_not_import_anthropic(first: str) -> None:
    # A fresh interpreter: every import order must work (node.mutators imports node.llm, which
    # imports nothing of node) and leave the heavy SDK unloaded until a client is built.
    code = (
        f"import sys, {first}, node.llm, node.mutators; "
        "print(sorted(m for m in ('anthropic', 'httpx', 'httpx2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_config_rejects_impossible_limits() -> None:
    with pytest.raises(ValueError, match="max_retries >= 0"):
        LLMConfig("anthropic", "claude-sonnet-5-5", KEY, max_retries=-1)
    with pytest.raises(ValueError, match="timeout_s > 0"):
        LLMConfig("anthropic", "claude-sonnet-5-5", KEY, timeout_s=0)
