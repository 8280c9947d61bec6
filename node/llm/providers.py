"""The models an evaluation's calls go to: the stand-in (offline, deterministic), and any chat
client (Anthropic, OpenAI-compatible) behind one synchronous interface the gateway calls from
the guest's thread."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import trio

from node.llm.chat import ChatMessage, LLMConfig, LLMError, LLMTimeout, Sleep
from node.llm.clients import AnthropicClient, OpenAICompatibleClient
from node.llm.standin import standin_complete, standin_judge

if TYPE_CHECKING:
    import httpx

STANDIN_MODEL = "standin-1"
JUDGE_SYSTEM = (
    "You check one property of a text. Read the question and the text, then answer with one "
    "word: yes or no."
)
JUDGE_MAX_TOKENS = 8
STOP_POLL_S = 0.05  # how often a call in flight looks whether its run was stopped
Stopped = Callable[[], bool]


def _never() -> bool:
    return False
_YES = re.compile(r"^\W*yes\b", re.IGNORECASE)


@dataclass(frozen=True)
class ModelReply:
    """One answer and what it cost."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class ModelProvider(Protocol):
    """A model the gateway asks, synchronously (it runs on the guest's thread). `deterministic`:
    the same request always gets the same reply (a spot check then needs no statistics)."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def deterministic(self) -> bool: ...

    def complete(
        self, system: str, user: str, max_tokens: int, stopped: Stopped = _never
    ) -> ModelReply:
        """The reply; raises LLMError when there is none (LLMTimeout once `stopped`)."""
        ...

    def judge(self, question: str, output: str, stopped: Stopped = _never) -> ModelReply:
        """A reply whose `judge_verdict` is the answer; raises LLMError when there is none."""
        ...


def judge_verdict(text: str) -> bool:
    """Yes or no from a judge's reply: yes only when the reply starts with the word "yes" (after
    punctuation or markup). Recorded replies give the same verdict on every replay."""
    return bool(_YES.match(text))


def judge_prompt(question: str, output: str) -> str:
    return f"Question: {question}\n\nText:\n<<<\n{output}\n>>>\n\nAnswer yes or no."


def estimated_tokens(*texts: str) -> int:
    """A token count for models that report none: one per 4 bytes of UTF-8, rounded up."""
    size = sum(len(text.encode("utf-8", "replace")) for text in texts)
    return (size + 3) // 4


class StandinProvider:
    """node/llm/standin.py as a provider: free, offline, deterministic; its token counts are
    estimates (so per-evaluation token limits apply offline too)."""

    name = "standin"
    model = STANDIN_MODEL
    deterministic = True

    def complete(
        self, system: str, user: str, max_tokens: int, stopped: Stopped = _never
    ) -> ModelReply:
        text = standin_complete(system, user, max_tokens)
        return ModelReply(text, estimated_tokens(system, user), estimated_tokens(text))

    def judge(self, question: str, output: str, stopped: Stopped = _never) -> ModelReply:
        text = "yes" if standin_judge(question, output) else "no"
        return ModelReply(text, estimated_tokens(question, output), 1)


class ChatProvider:
    """A chat client (node/llm/clients.py: retries, deadlines, errors) asked synchronously:
    each call runs its own trio loop on the calling thread (a guest's worker thread, never the
    node's event loop) with a fresh client, so no connection outlives the loop it belongs to.
    A failed call raises the client's LLMError."""

    deterministic = False

    def __init__(
        self,
        config: LLMConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = trio.sleep,
    ) -> None:
        self.config = config
        self._transport = transport
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self.config.provider

    @property
    def model(self) -> str:
        return self.config.model

    def _ask(self, system: str, user: str, max_tokens: int, stopped: Stopped) -> ModelReply:
        got: list[ModelReply] = []
        failed: list[LLMError] = []

        async def ask() -> None:
            anthropic = self.config.provider == "anthropic"
            maker = AnthropicClient if anthropic else OpenAICompatibleClient
            async with trio.open_nursery() as nursery:
                # The stop comes from the sandbox's clock on another thread, which has no hook
                # to call into this loop: looked at every STOP_POLL_S.
                nursery.start_soon(_cancel_when, stopped, nursery.cancel_scope)
                try:
                    async with maker(self.config, self._transport, self._sleep) as client:
                        reply = await client.complete(system, [ChatMessage("user", user)],
                                                      max_tokens)
                except LLMError as error:  # raised here, not wrapped in the nursery's group
                    failed.append(error)
                else:
                    usage = reply.usage
                    got.append(ModelReply(reply.text, usage.input_tokens, usage.output_tokens,
                                          usage.cost_usd))
                nursery.cancel_scope.cancel()

        trio.run(ask)
        if failed:
            raise failed[0]
        if not got:
            raise LLMTimeout("the evaluation was stopped while the model answered")
        return got[0]

    def complete(
        self, system: str, user: str, max_tokens: int, stopped: Stopped = _never
    ) -> ModelReply:
        return self._ask(system, user, min(max_tokens, self.config.max_tokens), stopped)

    def judge(self, question: str, output: str, stopped: Stopped = _never) -> ModelReply:
        return self._ask(JUDGE_SYSTEM, judge_prompt(question, output), JUDGE_MAX_TOKENS,
                         stopped)


async def _cancel_when(stopped: Stopped, scope: trio.CancelScope) -> None:
    while not stopped():
        await trio.sleep(STOP_POLL_S)
    scope.cancel()
