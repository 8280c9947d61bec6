"""The Anthropic client reads a reply up to MAX_REPLY_BYTES, as decoded, whatever its transport:
recorded replies over httpx.MockTransport stream their bodies and count what was read, and the
SDK's default transport answers a server on 127.0.0.1 (directly, and as a proxy from the
environment). Past the bound the call fails as LLMBadReply and nothing more is read: the SDK
read whatever answered at `--base-url` whole, a gigabyte or a gzip bomb."""

from __future__ import annotations

import functools
import gzip
import re
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
import trio
from recorded_llm import message, no_sleep

from node.llm import AnthropicClient, ChatMessage, LLMBadReply, LLMConfig
from node.llm.clients import MAX_REPLY_BYTES

TEXT = "Lumo Desk Lamp, $49. Order yours today."
CHUNK = 64 * 1024
BOMB = 64 * 1024 * 1024  # decoded; ~64 KB as gzip
TOO_LARGE = f"the reply is larger than {MAX_REPLY_BYTES} bytes"
COMPRESS = {"identity": bytes, "gzip": gzip.compress, "deflate": zlib.compress}


def padded(size: int) -> bytes:
    """A recorded message, valid JSON followed by whitespace, of `size` bytes."""
    body = message(TEXT).content
    return body + b" " * (size - len(body))


@functools.cache
def bomb(encoding: str) -> bytes:
    return COMPRESS[encoding](padded(BOMB))


class Body(httpx.AsyncByteStream):
    """A reply's body sent in chunks, counting the bytes it gave and whether it was closed."""

    def __init__(self, data: bytes, chunk: int = CHUNK) -> None:
        self.data = data
        self.chunk = chunk
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), self.chunk):
            piece = self.data[start : start + self.chunk]
            self.sent += len(piece)
            yield piece

    async def aclose(self) -> None:
        self.closed = True


def client(body: Body, encoding: str = "identity") -> AnthropicClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": encoding}
        return httpx.Response(200, headers=headers, stream=body)

    config = LLMConfig("anthropic", "claude-sonnet-5-5", "k", max_retries=0)
    return AnthropicClient(config, httpx.MockTransport(handler), no_sleep)


async def complete(chat: AnthropicClient) -> str:
    async with chat:
        reply = await chat.complete("Be brief.", [ChatMessage("user", "name: Lamp")], 64)
    return reply.text


async def test_a_reply_past_the_bound_fails_the_call_and_is_read_no_further() -> None:
    body = Body(padded(5 * 1024 * 1024))
    with pytest.raises(LLMBadReply, match=TOO_LARGE):
        await complete(client(body))
    assert body.sent <= MAX_REPLY_BYTES + CHUNK and body.closed


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_reply_is_bounded_on_its_decoded_size(encoding: str) -> None:
    """64 MiB of reply in ~64 KB of gzip: inflating stops near the bound, a few KB in."""
    body = Body(bomb(encoding), chunk=1024)
    with pytest.raises(LLMBadReply, match=TOO_LARGE):
        await complete(client(body, encoding))
    assert body.sent < len(body.data) // 4 and body.closed


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_a_reply_of_max_reply_bytes_is_read_and_one_byte_more_is_not(encoding: str) -> None:
    reply = Body(COMPRESS[encoding](padded(MAX_REPLY_BYTES)))
    assert await complete(client(reply, encoding)) == TEXT
    with pytest.raises(LLMBadReply, match=TOO_LARGE):
        await complete(client(Body(COMPRESS[encoding](padded(MAX_REPLY_BYTES + 1))), encoding))


class Server:
    """An HTTP/1.1 server on 127.0.0.1: each connection gets the next reply, then is closed;
    `sent` counts each reply's bytes that the socket took before the client hung up."""

    def __init__(self, *replies: tuple[dict[str, str], bytes]) -> None:
        self.replies = list(replies)
        self.targets: list[bytes] = []
        self.sent: list[int] = []
        self.finished = trio.Event()

    async def answer(self, stream: trio.SocketStream) -> None:
        head = await self.read_request(stream)
        self.targets.append(head.split(b" ")[1])
        headers, content = self.replies[len(self.sent)]
        self.sent.append(0)
        fields = {**headers, "content-length": str(len(content)), "connection": "close"}
        lines = "".join(f"{key}: {value}\r\n" for key, value in fields.items())
        await stream.send_all(f"HTTP/1.1 200 OK\r\n{lines}\r\n".encode())
        try:
            for start in range(0, len(content), CHUNK):
                await stream.send_all(content[start : start + CHUNK])
                self.sent[-1] += len(content[start : start + CHUNK])
        except trio.BrokenResourceError:  # the client stopped reading and closed
            pass
        finally:
            await stream.aclose()
            if len(self.sent) == len(self.replies):
                self.finished.set()

    @staticmethod
    async def read_request(stream: trio.SocketStream) -> bytes:
        """Read a request whole (the client sends all of it before reading); its head."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            assert chunk, "the client hung up before its request's head"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        while length and len(body) < int(length[1]):
            chunk = await stream.receive_some()
            assert chunk, "the client hung up before its request's body"
            body += chunk
        return head


# httpx2 2.17.0's AsyncResponseStream.__aiter__ iterates httpcore2's body without closing that
# iterator when its reader stops early, so trio closes it and warns (pydantic/httpx2#137 closed
# httpcore's own; encode/httpx#3686 is the same kind).
@pytest.mark.filterwarnings(
    "ignore:Async generator 'httpcore2._async.http11.HTTP11ConnectionByteStream.__aiter__' was "
    "garbage collected:ResourceWarning")
@pytest.mark.parametrize("route", ["direct", "proxy"])
async def test_a_client_built_without_a_transport_reads_the_sdks_way_but_bounded(
    route: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's default transport (its pool, and proxies from the environment) still answers
    with a gzip reply; a reply of 64 MiB fails the call and the server's sending is cut short."""
    json = {"content-type": "application/json"}
    server = Server(({**json, "content-encoding": "gzip"}, gzip.compress(padded(2000))),
                    (json, padded(BOMB)))
    listeners = await nursery.start(functools.partial(trio.serve_tcp, host="127.0.0.1"),
                                    server.answer, 0)
    address = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    if route == "proxy":
        monkeypatch.setenv("http_proxy", address)
    base_url = "http://api.anthropic.test" if route == "proxy" else address
    config = LLMConfig("anthropic", "claude-sonnet-5-5", "k", base_url, max_retries=0)
    assert await complete(AnthropicClient(config, sleep=no_sleep)) == TEXT
    with pytest.raises(LLMBadReply, match=TOO_LARGE):
        await complete(AnthropicClient(config, sleep=no_sleep))
    with trio.fail_after(10):
        await server.finished.wait()
    target = b"http://api.anthropic.test/v1/messages" if route == "proxy" else b"/v1/messages"
    assert server.targets == [target, target] and server.sent[1] < BOMB // 2
