"""Nesting depth at every decode entry point (issue 8, finding 11): lists and maps nested 1 to
5,000 deep, as bytes and as values, only ever raise the entry point's documented error; random
bytes never raise anything else; and the 507-byte sync reply that stopped a node is a counted,
penalised malformed message while the node keeps working."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hostile_peer import ATTACKER, connect, open_victim
from hypothesis import given, settings
from hypothesis import strategies as st

from node.net.decoded import DecodedMessages
from node.net.memory import MemoryHub, MemoryNetwork
from node.net.network import SYNC_PROTOCOL, NetworkError
from node.net.sync import INVALID_RESPONSE_PENALTY
from node.net.wire import (
    DropCounter,
    WireError,
    decode_batch,
    decode_or_count,
    decode_sync_request,
    decode_sync_response,
)
from research_dag import (
    MAX_NESTING,
    Problem,
    RecordError,
    canonical_encode,
    decode_record,
    nesting_exceeds,
    validate_record,
)
from sandbox import Runtime

MAX_DEPTH = 5_000
LIST, MAP = b"\x91", b"\x81\xa1k"  # a one-element array; a one-entry map {"k": ...}
ATTACK = b"\x82\xa1v\x01\xa1x" + LIST * 500 + b"\x90"  # {"v": 1, "x": [[[...]]]}, finding 11


def _memo_envelope(data: bytes) -> None:
    drops = DropCounter()
    if DecodedMessages().envelope(data, drops) is None:
        assert drops.total == 1


def _memo_summary(data: bytes) -> None:
    DecodedMessages().sync_summary(data)


def _memo_records(data: bytes) -> None:
    DecodedMessages().sync_records(data, requested=["0" * 64])


def _counted(data: bytes) -> None:
    drops = DropCounter()
    if decode_or_count(data, drops) is None:
        assert drops.total == 1


# Every function that reads bytes from a peer or a file, with the one error it documents.
BYTE_DECODERS: list[tuple[Callable[[bytes], Any], type[Exception]]] = [
    (decode_record, RecordError),
    (decode_batch, WireError),
    (decode_sync_request, WireError),
    (decode_sync_response, WireError),
    (_counted, WireError),  # never raises: counts
    (_memo_envelope, WireError),  # never raises: counts
    (_memo_summary, WireError),
    (_memo_records, WireError),
]


RAISING = {decode for decode, _ in BYTE_DECODERS} - {_counted, _memo_envelope}


def _framings(nested: bytes, depth: int) -> Iterator[bytes]:
    """`nested` alone and as a message field at every depth; inside a record map and as an
    envelope's record at the shallow depths and a sample of the rest (the same code paths,
    at half the test's time)."""
    yield nested
    yield b"\x82\xa1v\x01\xa1x" + nested
    if depth <= 4 * MAX_NESTING or depth % 97 == 0:
        yield b"\x81\xa4kind" + nested
        yield canonical_encode({"records": [b"\x81\xa4kind" + nested], "v": 1})


def _only_documented(decode: Callable[[bytes], Any], error: type[Exception], data: bytes) -> str:
    try:
        decode(data)
    except error as raised:
        return str(raised)
    return ""


@pytest.mark.parametrize("level", [LIST, MAP], ids=["lists", "maps"])
def test_bytes_nested_1_to_5000_deep_raise_only_documented_errors(level: bytes) -> None:
    for depth in range(1, MAX_DEPTH + 1):
        nested = level * depth + b"\xc0"
        assert nesting_exceeds(nested) == (depth > MAX_NESTING)
        for data in _framings(nested, depth):
            for decode, error in BYTE_DECODERS:
                message = _only_documented(decode, error, data)
                if depth > MAX_NESTING and data is nested and decode in RAISING:
                    assert "deep" in message


@pytest.mark.parametrize("kind", ["lists", "maps"])
def test_values_nested_1_to_5000_deep_raise_only_record_error(kind: str) -> None:
    value: Any = None
    for depth in range(1, MAX_DEPTH + 1):
        value = [value] if kind == "lists" else {"k": value}
        if depth <= MAX_NESTING:
            canonical_encode(value)
        else:
            with pytest.raises(RecordError, match="deep"):
                canonical_encode(value)
        with pytest.raises(RecordError) as refused:  # never a valid record, never RecursionError
            validate_record({"kind": "problem", "x": value})
        assert depth + 1 <= MAX_NESTING or "deep" in str(refused.value)


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(RecordError, match="deep"):
        canonical_encode(loop)
    with pytest.raises(RecordError, match="deep"):
        validate_record({"kind": "problem", "x": loop})


DEEP_PREFIX = st.builds(
    lambda level, depth, tail: level * depth + tail,
    st.sampled_from([LIST, MAP, b"\xdc\x00\x01", b"\xde\x00\x01\xa1k"]),
    st.integers(1, 3_000),
    st.binary(max_size=64),
)


@settings(max_examples=400)
@given(st.one_of(st.binary(max_size=2_048), DEEP_PREFIX))
def test_random_bytes_raise_only_documented_errors_everywhere(data: bytes) -> None:
    for decode, error in BYTE_DECODERS:
        _only_documented(decode, error, data)


async def test_the_deep_sync_reply_is_a_counted_malformed_message_and_the_node_keeps_working(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    assert len(ATTACK) == 507
    hub = MemoryHub(seed=111)
    async with open_victim(hub, runtime, tmp_path) as victim, \
            hub.open_node(ATTACKER.peer_id) as attacker:

        async def answer_deep(peer: str, data: bytes) -> bytes:
            return ATTACK

        attacker.handle_requests(SYNC_PROTOCOL, answer_deep)
        await connect(hub, attacker, victim)  # the victim asks for a summary on connect
        assert victim.stats.drops.counts["malformed"] == 1
        assert victim.sync.failures == 1
        network = victim.network
        assert isinstance(network, MemoryNetwork)
        assert network.score(ATTACKER.peer_id) == INVALID_RESPONSE_PENALTY
        assert await victim.sync_with_peers() == 0  # asking again: refused again, no crash
        assert victim.stats.drops.counts["malformed"] == 2
        with pytest.raises(NetworkError):  # the same bytes as a request: the stream fails
            await attacker.request(victim.me, SYNC_PROTOCOL, ATTACK)
        await victim.pose(probe_problem)
        assert await victim.research_round() is not None  # still researching


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                  max_size=4),
    max_leaves=40,
)


@settings(max_examples=300)
@given(VALUES, st.integers(0, 6))
def test_the_byte_scan_measures_the_depth_msgpack_builds(value: Any, limit: int) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    assert nesting_exceeds(data, limit) == (_depth(value) > limit)
    assert nesting_exceeds(data + b"\x91\x91\x91", limit) == (_depth(value) > limit)  # one object
