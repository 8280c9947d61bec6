"""One request/response exchange per stream, for `node.net.libp2p`: length-prefixed frames, size
limits, and the stream reset on any failure (kept free of libp2p: it needs only
read/write/close/reset)."""

from __future__ import annotations

import contextlib
from typing import Protocol

import trio

from node.net.network import (
    MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
    REQUEST_ORIGIN,
    NetworkError,
    RequestHandler,
)

FRAME_HEADER_BYTES = 4  # a frame: 4-byte big-endian length, then that many bytes
SERVE_TIMEOUT_S = 30.0  # server side: read the request, run the handler, write the response
CLEANUP_TIMEOUT_S = 1.0  # closing or resetting a stream, shielded

StreamErrors = tuple[type[BaseException], ...]


class ByteStream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...

    async def reset(self) -> None: ...


async def exchange(stream: ByteStream, request: bytes, errors: StreamErrors) -> bytes:
    """Send `request`, return the response; NetworkError (stream reset) on any failure.
    `errors` are what the transport raises for a failed stream."""
    done = False
    try:
        await write_frame(stream, request)
        response = await read_frame(stream, MAX_RESPONSE_BYTES)
        done = True
    except errors as error:
        raise NetworkError(f"the stream failed: {error!r}") from error
    finally:
        await (close_stream(stream, errors) if done else reset_stream(stream, errors))
    return response


async def serve(
    stream: ByteStream, peer: str, handler: RequestHandler, errors: StreamErrors,
    origin: str | None = None,
) -> bool:
    """Answer one request with `handler`, within SERVE_TIMEOUT_S, with REQUEST_ORIGIN set to
    `origin` meanwhile. Any failure resets the stream; returns False when the handler itself
    failed (raised, or answered over the limit)."""
    handler_failed = answered = False
    with contextlib.suppress(NetworkError, trio.TooSlowError, *errors):
        with trio.fail_after(SERVE_TIMEOUT_S):
            request = await read_frame(stream, MAX_REQUEST_BYTES)
            token = REQUEST_ORIGIN.set(origin)
            try:
                response = await handler(peer, request)
            except Exception:  # noqa: BLE001  # peer-fed app code: fail this exchange only
                handler_failed = True
            else:
                handler_failed = len(response) > MAX_RESPONSE_BYTES
                if not handler_failed:
                    await write_frame(stream, response)
                    answered = True
            finally:
                REQUEST_ORIGIN.reset(token)
    await (close_stream(stream, errors) if answered else reset_stream(stream, errors))
    return not handler_failed


async def read_frame(stream: ByteStream, limit: int) -> bytes:
    size = int.from_bytes(await read_exactly(stream, FRAME_HEADER_BYTES), "big")
    if size > limit:
        raise NetworkError(f"a frame of {size} bytes exceeds the {limit}-byte limit")
    return await read_exactly(stream, size)


async def write_frame(stream: ByteStream, data: bytes) -> None:
    await stream.write(len(data).to_bytes(FRAME_HEADER_BYTES, "big") + data)


async def close_stream(stream: ByteStream, errors: StreamErrors) -> None:
    with trio.move_on_after(CLEANUP_TIMEOUT_S, shield=True), contextlib.suppress(*errors):
        await stream.close()


async def reset_stream(stream: ByteStream, errors: StreamErrors) -> None:
    with trio.move_on_after(CLEANUP_TIMEOUT_S, shield=True), contextlib.suppress(*errors):
        await stream.reset()


async def read_exactly(stream: ByteStream, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = await stream.read(size - len(buffer))
        if not chunk:
            raise NetworkError(f"the stream ended after {len(buffer)} of {size} bytes")
        buffer += chunk
    return bytes(buffer)
