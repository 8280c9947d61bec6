"""The chat-model contract every LLM client meets: config, messages, errors, budget, retries."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import ClassVar, Literal, Protocol

import trio

Provider = Literal["anthropic", "openai"]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-5-5"
# USD per million tokens (input, output): Anthropic's published Sonnet 5.5 rate; local
# OpenAI-compatible endpoints cost nothing (set prices explicitly for a paid one).
PRICES: dict[Provider, tuple[float, float]] = {"anthropic": (2.0, 10.0), "openai": (0.0, 0.0)}
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
MAX_RETRY_AFTER_S = 300.0
MAX_ERROR_TEXT = 300
MAX_TOKEN_COUNT = 2**63 - 1  # the largest token count a record carries (research_dag: u63)
_PROMPT_HEADER = re.compile(r"\A<!-- prompt: [^>]*-->\n")


@dataclass(frozen=True)
class Usage:
    """What model calls cost (one proposal, one pose): tokens and estimated money; zero for the
    offline operators."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True)
class LLMConfig:
    """How to reach one model and what it may spend; `repr` never shows the key."""

    provider: Provider
    model: str
    api_key: str = field(default="", repr=False)
    base_url: str | None = None
    max_tokens: int = 4096
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    input_usd_per_mtok: float | None = None  # None: the provider's default price
    output_usd_per_mtok: float | None = None
    token_budget: int | None = None  # input + output tokens over the whole run
    money_budget_usd: float | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.timeout_s <= 0 or self.max_tokens <= 0:
            raise ValueError("LLMConfig needs max_retries >= 0, timeout_s > 0 and max_tokens > 0")

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        default_in, default_out = PRICES[self.provider]
        price_in = default_in if self.input_usd_per_mtok is None else self.input_usd_per_mtok
        price_out = default_out if self.output_usd_per_mtok is None else self.output_usd_per_mtok
        return (input_tokens * price_in + output_tokens * price_out) / 1_000_000

    def usage(self, input_tokens: int, output_tokens: int) -> Usage:
        """What a reply cost, from the token counts its server reported: each must be in
        0..MAX_TOKEN_COUNT, else LLMBadReply (a server's -5 refunded the run's money budget,
        and 10**400 raised OverflowError pricing it)."""
        if not (0 <= input_tokens <= MAX_TOKEN_COUNT and 0 <= output_tokens <= MAX_TOKEN_COUNT):
            raise LLMBadReply("the reply's token counts are not what a model reports")
        return Usage(input_tokens, output_tokens, self.cost_usd(input_tokens, output_tokens))

    @classmethod
    def from_env(
        cls,
        provider: Provider,
        model: str | None = None,
        base_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> LLMConfig:
        """Read keys and endpoints from the environment; raise LLMNotConfigured when missing."""
        env = os.environ if env is None else env
        model = model or env.get("SWARM_LLM_MODEL") or None
        if provider == "anthropic":
            key = env.get("ANTHROPIC_API_KEY", "").strip()
            if not key:
                raise LLMNotConfigured(
                    "ANTHROPIC_API_KEY is not set: export it, or use the offline mutator"
                )
            url = base_url or env.get("ANTHROPIC_BASE_URL") or None
            return cls("anthropic", model or DEFAULT_ANTHROPIC_MODEL, key, url)
        key = env.get("OPENAI_API_KEY", "").strip()
        url = base_url or env.get("OPENAI_BASE_URL") or None
        if not key and not url:
            raise LLMNotConfigured(
                "set OPENAI_BASE_URL (e.g. http://localhost:11434/v1 for Ollama) "
                "or OPENAI_API_KEY to use the openai mutator"
            )
        if not model:
            raise LLMNotConfigured("set SWARM_LLM_MODEL (or --model) to the model to ask")
        # Local models on a CPU can take minutes for one reply.
        return cls("openai", model, key, url or DEFAULT_OPENAI_BASE_URL, timeout_s=600.0)


class LLMError(Exception):
    """A model call that did not produce a reply; `usage` is what it cost anyway."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or Usage()
        self.attempts = 1


class LLMNotConfigured(LLMError):
    """No key or endpoint: the message says which variable to set."""


class LLMRateLimited(LLMError):
    retryable = True

    def __init__(self, retry_after: float | None, message: str = "rate limited") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMTimeout(LLMError):
    retryable = True


class LLMUnavailable(LLMError):
    """Server error (5xx, overloaded) or no connection: worth retrying later."""

    retryable = True


class LLMAuthError(LLMError):
    """Key missing, wrong or without credit: retrying cannot help."""


class LLMBadRequest(LLMError):
    """The endpoint rejected the request itself (unknown model, prompt too long)."""


class LLMRefused(LLMError):
    """The model declined to answer."""

    retryable = True


class LLMBadReply(LLMError):
    """The endpoint answered with something that is not a chat reply."""

    retryable = True


class LLMBudgetExceeded(LLMError):
    """The run's token or money budget is spent."""


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatReply:
    """A model's answer; `stop_reason` uses Anthropic's words (end_turn, max_tokens, ...)."""

    text: str
    usage: Usage
    stop_reason: str


class ChatClient(Protocol):
    name: str

    async def complete(
        self, system: str, messages: list[ChatMessage], max_tokens: int
    ) -> ChatReply: ...


class BudgetMeter:
    """Accumulates usage across calls and refuses a call once the config's budget is spent."""

    def __init__(self, config: LLMConfig | None = None) -> None:
        self.max_tokens = None if config is None else config.token_budget
        self.max_usd = None if config is None else config.money_budget_usd
        self.spent = Usage()
        self.calls = 0

    def check(self) -> None:
        tokens = self.spent.input_tokens + self.spent.output_tokens
        if self.max_tokens is not None and tokens >= self.max_tokens:
            raise LLMBudgetExceeded(f"token budget spent: {tokens} of {self.max_tokens} tokens")
        if self.max_usd is not None and self.spent.cost_usd >= self.max_usd:
            raise LLMBudgetExceeded(
                f"money budget spent: ${self.spent.cost_usd:.4f} of ${self.max_usd:.2f}"
            )

    def add(self, usage: Usage) -> None:
        self.spent = self.spent + usage
        self.calls += 1


def status_error(status: int, headers: Mapping[str, str], detail: str) -> LLMError:
    """Translate an HTTP error status into our error (shared by both clients)."""
    text = f"HTTP {status}: {detail[:MAX_ERROR_TEXT]}".rstrip(": ")
    if status == 429:
        return LLMRateLimited(_retry_after(headers), text)
    if status in (401, 402, 403):
        return LLMAuthError(text)
    if status == 408:
        return LLMTimeout(text)
    if status == 409 or status >= 500:
        return LLMUnavailable(text)
    return LLMBadRequest(text)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            seconds = float(headers.get(name, "")) * scale
        except ValueError:  # absent, or an HTTP date: fall back to our backoff
            continue
        if seconds != seconds:  # NaN: trio.sleep raised ValueError out of the call's retries
            continue
        return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
    return None


async def call_with_retries(
    config: LLMConfig, sleep: Sleep, send: Callable[[], Awaitable[ChatReply]]
) -> ChatReply:
    """Run `send` under a per-attempt deadline, retrying retryable errors with backoff."""
    for attempt in range(config.max_retries + 1):
        try:
            with trio.fail_after(config.timeout_s):
                return await send()
        except trio.TooSlowError:
            error: LLMError = LLMTimeout(f"no reply within {config.timeout_s:g} s")
        except (LLMRateLimited, LLMTimeout, LLMUnavailable) as retryable:
            error = retryable
        error.attempts = attempt + 1
        if attempt == config.max_retries:
            raise error
        retry_after = error.retry_after if isinstance(error, LLMRateLimited) else None
        backoff = min(config.backoff_base_s * 2**attempt, config.backoff_max_s)
        await sleep(backoff if retry_after is None else retry_after)
    raise AssertionError("unreachable: the last attempt returns or raises")


def load_prompt(name: str) -> str:
    """A prompt file from node/llm/prompts, without its `<!-- prompt: ... -->` version header."""
    text = (resources.files("node.llm") / "prompts" / name).read_text(encoding="utf-8")
    return _PROMPT_HEADER.sub("", text)


def closed_blocks(text: str, opening: re.Pattern[str], closing: str
                  ) -> Iterator[tuple[re.Match[str], str]]:
    """Each block of a reply that `opening` starts and the next `closing` ends, with its body,
    left to right and not overlapping: what `re.finditer(opening + "(.*?)" + closing, DOTALL)`
    finds, in linear time. That pattern scanned to the end of the reply from every opening no
    closing follows: 10,000 unclosed `<diff>` tags (60 KB) took 7.5 s, 240 KB 96 s; 10,000
    unclosed `<file>` blocks held `swarm pose` 48 s."""
    position = 0
    while (found := opening.search(text, position)) is not None:
        end = text.find(closing, found.end())
        if end < 0:  # no later opening has a closing after it either
            return
        yield found, text[found.end() : end]
        position = end + len(closing)
