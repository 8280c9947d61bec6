"""LLM chat clients: Anthropic (the only module importing anthropic) and OpenAI-compatible."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Self, cast

import trio

from node.llm.chat import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_BASE_URL,
    MAX_ERROR_TEXT,
    MAX_RETRY_AFTER_S,
    PRICES,
    BudgetMeter,
    ChatClient,
    ChatMessage,
    ChatReply,
    LLMAuthError,
    LLMBadReply,
    LLMBadRequest,
    LLMBudgetExceeded,
    LLMConfig,
    LLMError,
    LLMNotConfigured,
    LLMRateLimited,
    LLMRefused,
    LLMTimeout,
    LLMUnavailable,
    Provider,
    Sleep,
    call_with_retries,
    status_error,
)

NESTED = "the reply nests too deeply to decode"
# A reply's body is read up to this, decoded (a reply of 32,000 tokens is ~200 KB of JSON).
MAX_REPLY_BYTES = 4 * 1024 * 1024
TOO_LARGE = f"the reply is larger than {MAX_REPLY_BYTES} bytes"
# anthropic (~1.3 s) and the HTTP stacks load on first use so that `swarm --help` stays fast.
if TYPE_CHECKING:
    import anthropic
    import httpx
    import httpx2

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL",
    "DEFAULT_OPENAI_BASE_URL",
    "MAX_ERROR_TEXT",
    "MAX_RETRY_AFTER_S",
    "PRICES",
    "AnthropicClient",
    "BudgetMeter",
    "ChatClient",
    "ChatMessage",
    "ChatReply",
    "LLMAuthError",
    "LLMBadReply",
    "LLMBadRequest",
    "LLMBudgetExceeded",
    "LLMConfig",
    "LLMError",
    "LLMNotConfigured",
    "LLMRateLimited",
    "LLMRefused",
    "LLMTimeout",
    "LLMUnavailable",
    "OpenAICompatibleClient",
    "Provider",
    "Sleep",
    "call_with_retries",
    "open_client",
    "status_error",
]


def _bridge(inner: httpx.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
    """Adapt an httpx transport to httpx2, the HTTP library anthropic 2.x is built on. The body
    passes through unread and still encoded: `_bounded` reads it."""
    import httpx
    import httpx2

    class Body(httpx2.AsyncByteStream):
        def __init__(self, stream: httpx.AsyncByteStream) -> None:
            self._stream = stream

        async def __aiter__(self) -> AsyncIterator[bytes]:
            # The stream itself, not `aiter_raw()`, which leaves the stream's own iterator
            # unclosed when its reader stops early (httpx2 reads the stream itself for this).
            chunks = aiter(self._stream)
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                if isinstance(chunks, AsyncGenerator):
                    await chunks.aclose()

        async def aclose(self) -> None:
            await self._stream.aclose()

    class Bridge(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            outgoing = httpx.Request(
                request.method,
                str(request.url),
                headers=list(request.headers.raw),
                content=await request.aread(),
            )
            response = await inner.handle_async_request(outgoing)
            if response.is_stream_consumed:  # built whole, as a recorded reply is: decoded
                headers = _decoded(response.headers.raw)
                return httpx2.Response(
                    response.status_code, headers=headers, content=response.content
                )
            if not isinstance(response.stream, httpx.AsyncByteStream):
                raise TypeError("the transport answered with a sync stream")
            headers = list(response.headers.raw)
            body = Body(response.stream)
            return httpx2.Response(response.status_code, headers=headers, stream=body)

        async def aclose(self) -> None:
            await inner.aclose()

    return Bridge()


def _bounded(inner: httpx2.AsyncClient) -> httpx2.AsyncBaseTransport:
    """A transport that sends through `inner` and reads each reply whole, up to MAX_REPLY_BYTES
    as decoded (httpx2 inflates in pieces of at most 1 MiB, so a gzip bomb stops near the bound),
    raising LLMBadReply past it: the SDK would read whatever its `--base-url` sends."""
    import httpx2

    class Bounded(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            # The outer client follows redirects back through here: every hop is bounded.
            response = await inner.send(request, stream=True, follow_redirects=False)
            async with contextlib.aclosing(response):
                body = await _read_at_most(response, MAX_REPLY_BYTES)
            if body is None:
                raise LLMBadReply(TOO_LARGE)
            headers = _decoded(response.headers.raw)
            return httpx2.Response(response.status_code, headers=headers, content=body)

        async def aclose(self) -> None:
            await inner.aclose()

    return Bounded()


def _decoded(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers for their body held decoded, where its encoding and framing no longer apply."""
    skip = {b"content-encoding", b"content-length", b"transfer-encoding"}
    return [(key, value) for key, value in headers if key.lower() not in skip]


class _RetryingClient:
    """What both clients share: retries under a deadline, and closing as a context manager."""

    name: str

    def __init__(self, config: LLMConfig, sleep: Sleep) -> None:
        self.config = config
        self._sleep = sleep

    async def complete(
        self, system: str, messages: list[ChatMessage], max_tokens: int
    ) -> ChatReply:
        reply = await call_with_retries(
            self.config, self._sleep, lambda: self._send(system, messages, max_tokens)
        )
        # JSON's "\ud800" is a lone surrogate: a package file posed from it raised
        # UnicodeEncodeError out of `swarm pose`. What no UTF-8 can carry is shown as "?".
        text = reply.text.encode("utf-8", "replace").decode("utf-8")
        return reply if text == reply.text else replace(reply, text=text)

    async def _send(self, system: str, messages: list[ChatMessage], max_tokens: int) -> ChatReply:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with trio.move_on_after(5, shield=True):  # close even when cancelled, but not forever
            await self.aclose()


class AnthropicClient(_RetryingClient):
    """Claude through the official SDK; its retries are off because ours bound the budget."""

    name = "anthropic"

    def __init__(
        self,
        config: LLMConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = trio.sleep,
    ) -> None:
        import anthropic
        import httpx2

        super().__init__(config, sleep)
        # The SDK's own default client routes each request (its connection pool, TCP
        # keep-alive, proxies from the environment); the SDK gets one that reads through
        # `_bounded` (and follows redirects, as its default does).
        inner = (
            anthropic.DefaultAsyncHttpxClient()
            if transport is None
            else httpx2.AsyncClient(transport=_bridge(transport))
        )
        http_client = anthropic.DefaultAsyncHttpxClient(transport=_bounded(inner))
        # timeout=None: the deadline is our trio cancel scope, not an SDK setting.
        self._sdk = anthropic.AsyncAnthropic(
            api_key=config.api_key,
            base_url=config.base_url,
            http_client=http_client,
            max_retries=0,
            timeout=None,
        )

    async def _send(self, system: str, messages: list[ChatMessage], max_tokens: int) -> ChatReply:
        import anthropic

        params: list[anthropic.types.MessageParam] = [
            {"role": "user", "content": message.content}
            if message.role == "user"
            else {"role": "assistant", "content": message.content}
            for message in messages
        ]
        try:
            reply = await self._sdk.messages.create(
                model=self.config.model, max_tokens=max_tokens, system=system, messages=params
            )
        except anthropic.APIStatusError as error:
            detail = error.api_message or error.message
            raise status_error(error.status_code, error.response.headers, detail) from None
        except anthropic.APITimeoutError:
            raise LLMTimeout("the connection timed out") from None
        except anthropic.APIConnectionError as error:
            if isinstance(error.__cause__, LLMBadReply):  # raised by `_bounded`, wrapped
                raise LLMBadReply(str(error.__cause__)) from None
            raise LLMUnavailable(f"cannot reach the Anthropic API: {error.message}") from None
        except anthropic.APIResponseValidationError as error:
            raise LLMBadReply(f"unexpected reply shape: {error.message}") from None
        except RecursionError:  # the SDK's json.loads of a body nested 100,000 deep
            raise LLMBadReply(NESTED) from None
        # The SDK builds replies without validating them: a proxy's HTML page arrives as a str,
        # an error-shaped JSON as a Message with missing attributes.
        try:
            counts = reply.usage
            input_tokens = (
                int(counts.input_tokens)
                + int(counts.cache_creation_input_tokens or 0)
                + int(counts.cache_read_input_tokens or 0)
            )
            output_tokens = int(counts.output_tokens)
            stop_reason = str(reply.stop_reason or "")
            text = "".join(block.text for block in reply.content if block.type == "text")
        except (AttributeError, TypeError, ValueError, OverflowError):  # OverflowError: Infinity
            raise LLMBadReply("the reply is not an Anthropic message") from None
        usage = self.config.usage(input_tokens, output_tokens)
        if stop_reason == "refusal":
            raise LLMRefused(f"the model refused: {text[:MAX_ERROR_TEXT]}".strip(), usage)
        return ChatReply(text, usage, stop_reason)

    async def aclose(self) -> None:
        await self._sdk.close()


_OPENAI_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}


class OpenAICompatibleClient(_RetryingClient):
    """Any `/chat/completions` endpoint: OpenAI, Ollama, llama.cpp, vLLM."""

    name = "openai"

    def __init__(
        self,
        config: LLMConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = trio.sleep,
    ) -> None:
        import httpx

        super().__init__(config, sleep)
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        base_url = (config.base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/")
        # timeout=None: the deadline is our trio cancel scope, not an httpx setting.
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, transport=transport, timeout=None
        )

    async def _send(self, system: str, messages: list[ChatMessage], max_tokens: int) -> ChatReply:
        import httpx

        body = {
            "model": self.config.model,
            "max_tokens": max_tokens,
            "messages": [{"role": "system", "content": system}]
            + [{"role": message.role, "content": message.content} for message in messages],
        }
        try:
            async with self._http.stream("POST", "/chat/completions", json=body) as response:
                raw = await _read_at_most(response, MAX_REPLY_BYTES)
        except httpx.TimeoutException:
            raise LLMTimeout("the connection timed out") from None
        except httpx.RequestError as error:  # transport, and a body it cannot decode
            raise LLMUnavailable(f"cannot reach {self._http.base_url}: {error}") from None
        if raw is None:
            raise LLMBadReply(TOO_LARGE)
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = None
        except RecursionError:
            raise LLMBadReply(NESTED) from None
        if response.status_code >= 400:
            raise status_error(response.status_code, response.headers, _error_detail(data))
        return self._parse(data)

    def _parse(self, data: Any) -> ChatReply:
        try:
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content") or ""
            counts = data.get("usage") or {}
            input_tokens = int(counts.get("prompt_tokens") or 0)
            output_tokens = int(counts.get("completion_tokens") or 0)
            finish = str(choice.get("finish_reason") or "")
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, OverflowError):
            raise LLMBadReply("the reply is not a chat completion") from None
        if not isinstance(text, str):
            raise LLMBadReply("the reply's content is not text")
        usage = self.config.usage(input_tokens, output_tokens)
        stop_reason = _OPENAI_STOP_REASONS.get(finish, finish)
        refusal = message.get("refusal")
        if stop_reason == "refusal" or refusal:
            raise LLMRefused(f"the model refused: {refusal or text}"[:MAX_ERROR_TEXT], usage)
        return ChatReply(text, usage, stop_reason)

    async def aclose(self) -> None:
        await self._http.aclose()


async def _read_at_most(response: httpx.Response | httpx2.Response, limit: int) -> bytes | None:
    """The decoded body, or None once it passes `limit` bytes (read no further: a server
    answering with a gigabyte would take that much memory)."""
    chunks: list[bytes] = []
    size = 0
    # httpx declares an AsyncIterator; it is an async generator, which aclosing closes.
    stream = cast("AsyncGenerator[bytes, None]", response.aiter_bytes())
    async with contextlib.aclosing(stream) as body:
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _error_detail(data: Any) -> str:
    """The human part of an error body: OpenAI `{"error": {"message"}}`, Ollama `{"error"}`."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or "")
    return str(error or "")


def open_client(
    config: LLMConfig, transport: httpx.AsyncBaseTransport | None = None
) -> AnthropicClient | OpenAICompatibleClient:
    """The client for `config.provider`; close it with `aclose()` or use it as `async with`."""
    if config.provider == "anthropic":
        return AnthropicClient(config, transport)
    return OpenAICompatibleClient(config, transport)
