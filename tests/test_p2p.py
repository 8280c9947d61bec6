"""Real libp2p hosts on 127.0.0.1: identity, bootstrap, gossip, validation, requests, scoring,
Noise-only security, py-libp2p's failure modes contained, and a clean shutdown.

Readiness is waited on, not slept for: `wait_mesh` blocks on GossipSub's own mesh event, under
a `trio.fail_after` bound. Two polls remain (a disconnect and an unsubscribe have no event;
short steps, bounded), and the fixed waits are the windows in which a message must *not* arrive
(SILENCE_S; a message takes ~10 ms here)."""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import base58
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.pubsub.pb import rpc_pb2
from libp2p.utils.varint import encode_varint_prefixed, read_varint_prefixed_bytes_limited

from node.net import libp2p_host
from node.net.libp2p import Libp2pNetwork, open_libp2p_network
from node.net.libp2p_host import IDONTWANT_MIN_BYTES, _ChunkedStream
from node.net.network import MAX_MESSAGE_BYTES, MAX_RESPONSE_BYTES, GossipMessage, NetworkError

TOPIC = "/swarm/1/test"
ECHO = "/swarm/test-echo/1.0.0"
SILENCE_S = 0.5  # how long a message that must not arrive is given to arrive anyway
STEP_S = 10.0  # bound on each step that waits for the network


def seed(n: int) -> bytes:
    return bytes([n]) * 32


@asynccontextmanager
async def open_hosts(count: int) -> AsyncIterator[list[Libp2pNetwork]]:
    """`count` hosts; every host after the first bootstraps from the first."""
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(open_libp2p_network(seed(1)))
        hosts = [first]
        for n in range(2, count + 1):
            hosts.append(
                await stack.enter_async_context(
                    open_libp2p_network(seed(n), bootstrap=first.listen_addrs())
                )
            )
        yield [_concrete(host) for host in hosts]


def _concrete(network: object) -> Libp2pNetwork:
    assert isinstance(network, Libp2pNetwork)
    return network


async def mesh(publisher: Libp2pNetwork, *receivers: Libp2pNetwork) -> None:
    with trio.fail_after(STEP_S):
        for receiver in receivers:
            await publisher.wait_mesh(receiver.peer_id, TOPIC)


async def receive(channel: trio.MemoryReceiveChannel[GossipMessage]) -> GossipMessage:
    with trio.fail_after(STEP_S):
        return await channel.receive()


async def nothing_arrives(channel: trio.MemoryReceiveChannel[GossipMessage]) -> None:
    with trio.move_on_after(SILENCE_S):
        message = await channel.receive()
        pytest.fail(f"unexpected delivery: {message.data[:20]!r}")


def expected_peer_id(seed_bytes: bytes) -> str:
    public = (
        Ed25519PrivateKey.from_private_bytes(seed_bytes)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    protobuf = bytes([0x08, 0x01, 0x12, len(public)]) + public  # KeyType Ed25519 = 1, Data
    multihash = bytes([0x00, len(protobuf)]) + protobuf  # identity multihash
    return base58.b58encode(multihash).decode()


async def test_peer_id_and_listen_addrs_come_from_the_seed() -> None:
    async with open_hosts(1) as [host]:
        assert host.peer_id == expected_peer_id(seed(1))
        assert host.peer_id.startswith("12D3KooW")
        [addr] = host.listen_addrs()
        assert addr.startswith("/ip4/127.0.0.1/tcp/")
        assert addr.endswith(f"/p2p/{host.peer_id}")
        assert int(addr.split("/")[4]) > 0  # the bound port, not the requested 0


async def test_bootstrap_connects_and_peer_events_fire_on_both_sides() -> None:
    async with open_hosts(3) as [a, b, c]:
        with trio.fail_after(STEP_S):
            assert {await a.peer_events().receive() for _ in range(2)} == {b.peer_id, c.peer_id}
            assert await b.peer_events().receive() == a.peer_id
            assert await c.peer_events().receive() == a.peer_id
        assert set(a.connected_peers()) == {b.peer_id, c.peer_id}
        assert b.connected_peers() == [a.peer_id]
        assert await b.connect(a.listen_addrs()[0]) == a.peer_id  # already connected: no-op
        assert await b.connect(c.listen_addrs()[0]) == c.peer_id
        with trio.fail_after(STEP_S):
            assert await c.peer_events().receive() == b.peer_id


async def test_a_message_reaches_every_other_subscriber_through_a_relay() -> None:
    async with open_hosts(3) as [a, b, c]:
        channels = [await host.subscribe(TOPIC) for host in (a, b, c)]
        await mesh(c, a)
        await mesh(a, b)  # b and c are not connected: a relays
        await c.publish(TOPIC, b"hello")
        for channel in channels[:2]:
            assert await receive(channel) == GossipMessage(TOPIC, c.peer_id, b"hello")
        with pytest.raises(trio.WouldBlock):
            channels[2].receive_nowait()  # own publishes are not delivered


async def test_a_burst_of_own_publishes_is_paced_not_dropped() -> None:
    # py-libp2p drops own publishes past its per-topic rate cap and RPCs past a peer's 32-deep
    # outbound queue; `publish` waits for both instead.
    async with open_hosts(2) as [a, b]:
        channel = await b.subscribe(TOPIC)
        await a.subscribe(TOPIC)
        await mesh(a, b)
        for n in range(80):
            await a.publish(TOPIC, b"burst %d" % n)
        with trio.fail_after(STEP_S):
            got = {(await channel.receive()).data for _ in range(80)}
        assert got == {b"burst %d" % n for n in range(80)}


async def test_closing_a_subscription_unsubscribes() -> None:
    async with open_hosts(2) as [a, b]:
        channel = await a.subscribe(TOPIC)
        await b.subscribe(TOPIC)
        await mesh(b, a)
        await channel.aclose()
        await b.publish(TOPIC, b"to a closed subscription")  # noticed on delivery
        with trio.fail_after(STEP_S):
            while TOPIC in a._pubsub.topic_ids:  # the unsubscribe runs in a task: poll
                await trio.sleep(0.01)
        again = await a.subscribe(TOPIC)
        # No mesh wait: leaving sent PRUNEs with a 10 s backoff; if that keeps a out, gossip
        # delivers.
        await b.publish(TOPIC, b"subscribed again")
        assert (await receive(again)).data == b"subscribed again"


async def test_idontwant_is_sent_for_large_messages_only() -> None:
    # As go-libp2p does: for a small message an IDONTWANT costs more than the duplicate it spares.
    async with open_hosts(2) as [a, b]:
        channel = await a.subscribe(TOPIC)
        await b.subscribe(TOPIC)
        await mesh(b, a)
        small, large = b"small", bytes(IDONTWANT_MIN_BYTES)
        await b.publish(TOPIC, small)
        await b.publish(TOPIC, large)
        # b's IDONTWANT for its own publish is queued ahead of the message (control first).
        assert [(await receive(channel)).data for _ in range(2)] == [small, large]
        refused = {mid for mids in a._router.dont_send_message_ids.values() for mid in mids}
        assert refused == {hashlib.sha256(large).digest()}


class _ScriptedStream(INetStream):
    """A stream that serves `incoming` in one piece and keeps what is written to it."""

    def __init__(self, incoming: bytes) -> None:
        self.muxed_conn = None  # type: ignore[assignment]  # no connection under it
        self.metric_send_channel = None
        self.incoming = incoming
        self.reads: list[int | None] = []
        self.written = b""

    async def read(self, n: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        self.reads.append(n)
        chunk, self.incoming = self.incoming, b""
        return chunk

    async def write(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.written += data

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()

    async def reset(self) -> None:
        await trio.lowlevel.checkpoint()

    def get_protocol(self) -> TProtocol | None:
        return None

    def set_protocol(self, protocol_id: TProtocol) -> None:
        pass

    def get_remote_address(self) -> tuple[str, int] | None:
        return None


async def test_pubsub_streams_are_read_in_chunks_not_byte_by_byte() -> None:
    # py-libp2p reads a length prefix one byte per read, and its yamux answers each read with
    # a window-update frame.
    rpcs = [bytes([n]) * size for n, size in enumerate((1, 300, 70_000))]
    stream = _ScriptedStream(b"".join(encode_varint_prefixed(rpc) for rpc in rpcs))
    chunked = _ChunkedStream(stream)
    assert [await read_varint_prefixed_bytes_limited(chunked, 1 << 20) for _ in rpcs] == rpcs
    assert len(stream.reads) == 1


async def test_rpcs_go_out_without_the_signed_peer_record() -> None:
    # Every receiver would verify it (Ed25519) for every RPC; the stream's hello carries it.
    async with open_hosts(1) as [host]:
        stream = _ScriptedStream(b"")
        rpc = rpc_pb2.RPC(senderRecord=b"record", publish=[rpc_pb2.Message(data=b"x")])
        assert await host._pubsub.write_msg(stream, rpc)
        sent = rpc_pb2.RPC()
        written = _ChunkedStream(_ScriptedStream(stream.written))
        sent.ParseFromString(await read_varint_prefixed_bytes_limited(written, 1 << 20))
        assert not sent.HasField("senderRecord")
        assert sent.publish[0].data == b"x"


async def test_a_rejecting_validator_stops_delivery() -> None:
    seen: list[tuple[str, bytes]] = []

    def validator(source: str, data: bytes) -> bool:
        seen.append((source, data))
        return not data.startswith(b"bad")

    async with open_hosts(2) as [a, b]:
        channel = await a.subscribe(TOPIC, validator)
        await b.subscribe(TOPIC)
        await mesh(b, a)
        for data in (b"bad 1", b"good 1", b"good 2"):
            await b.publish(TOPIC, data)
        assert sorted([(await receive(channel)).data for _ in range(2)]) == [b"good 1", b"good 2"]
        assert (b.peer_id, b"bad 1") in seen
        await nothing_arrives(channel)
        assert a.score(b.peer_id) < 0  # the rejection counts against the forwarder


async def test_oversize_messages_are_refused_both_ways() -> None:
    async with open_hosts(2) as [a, b]:
        channel = await a.subscribe(TOPIC)
        await b.subscribe(TOPIC)
        await mesh(b, a)
        with pytest.raises(ValueError, match="exceeds"):
            await b.publish(TOPIC, bytes(MAX_MESSAGE_BYTES + 1))
        # A peer that skips the size check (b's own messages pass its validator): a's must stop it.
        await b._pubsub.publish(TOPIC, bytes(MAX_MESSAGE_BYTES + 1))
        await b.publish(TOPIC, b"small")
        assert (await receive(channel)).data == b"small"
        await nothing_arrives(channel)


async def test_large_messages_published_as_a_peer_subscribes_arrive_intact() -> None:
    # py-libp2p replays recent messages to a new subscriber while its send loop writes the same
    # stream; unserialised, RPCs over one 64 KiB yamux frame interleave and corrupt it.
    async with open_hosts(2) as [a, b]:
        await b.subscribe(TOPIC)
        channel = await a.subscribe(TOPIC)
        for n in range(4):
            await b.publish(TOPIC, bytes([n]) * 200_000)
        with trio.fail_after(STEP_S):
            assert sorted([(await channel.receive()).data[0] for _ in range(4)]) == [0, 1, 2, 3]
        assert a.connected_peers() == [b.peer_id]


async def test_a_malformed_pubsub_rpc_costs_the_sender_its_connection_not_the_host() -> None:
    async with open_hosts(2) as [a, b]:
        # Our frame header (00 00 00 05) reads as three empty RPCs and a 5-byte one: garbage.
        with trio.fail_after(STEP_S), pytest.raises(NetworkError):
            await b.request(a.peer_id, "/meshsub/1.2.0", b"\xff\xff\xff\xff\xff")
        with trio.fail_after(STEP_S):
            while b.connected_peers():  # no disconnect event to wait on: poll
                await trio.sleep(0.05)
            assert await b.connect(a.listen_addrs()[0]) == a.peer_id
            channel = await a.subscribe(TOPIC)
            await b.subscribe(TOPIC)
            await mesh(b, a)
            await b.publish(TOPIC, b"still gossiping")
            assert (await receive(channel)).data == b"still gossiping"


async def test_request_response_round_trips_and_failures_are_contained() -> None:
    async def echo(peer: str, request: bytes) -> bytes:
        if request == b"raise":
            raise RuntimeError("handler bug")
        if request.startswith(b"size "):
            return bytes(int(request[5:]))
        return peer.encode() + b":" + request

    async with open_hosts(2) as [a, b]:
        a.handle_requests(ECHO, echo)
        with trio.fail_after(STEP_S):
            assert await b.request(a.peer_id, ECHO, b"hi") == f"{b.peer_id}:hi".encode()
            assert await b.request(a.peer_id, ECHO, b"size 1048576") == bytes(1 << 20)
            assert await b.request(a.peer_id, ECHO, b"size 0") == b""
            with pytest.raises(NetworkError, match=a.peer_id):
                await b.request(a.peer_id, ECHO, b"raise")
            with pytest.raises(NetworkError, match=a.peer_id):
                await b.request(a.peer_id, ECHO, f"size {MAX_RESPONSE_BYTES + 1}".encode())
            assert a.handler_failures == 2
            with pytest.raises(NetworkError, match=a.peer_id):
                await b.request(a.peer_id, "/swarm/unknown/1.0.0", b"hi")
            with pytest.raises(NetworkError, match="over"):
                await b.request(a.peer_id, ECHO, bytes(64 * 1024 + 1))
            with pytest.raises(NetworkError, match="not a peer id"):
                await b.request("0OIl", ECHO, b"hi")
            assert await b.request(a.peer_id, ECHO, b"still up") == f"{b.peer_id}:still up".encode()


async def test_a_caller_timeout_abandons_a_request_cleanly() -> None:
    async def stall(peer: str, request: bytes) -> bytes:
        await trio.sleep_forever()
        raise AssertionError

    async with open_hosts(2) as [a, b]:
        a.handle_requests(ECHO, stall)
        with trio.move_on_after(0.3) as scope:
            await b.request(a.peer_id, ECHO, b"hi")
        assert scope.cancelled_caught


async def _negotiate(port: int, protocol: str) -> bytes:
    """multistream-select by hand: the handshake, then one proposal; returns the answer."""

    def message(text: str) -> bytes:
        body = text.encode() + b"\n"
        return bytes([len(body)]) + body  # short enough for a one-byte varint

    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(message("/multistream/1.0.0") + message(protocol))
        expected = len(message("/multistream/1.0.0"))
        received = b""
        with trio.fail_after(STEP_S):
            while len(received) <= expected or len(received) < expected + 1 + received[expected]:
                received += await stream.receive_some()
        return received[expected + 1 :]


async def test_only_noise_is_offered_to_a_dialer() -> None:
    async with open_hosts(1) as [host]:
        port = int(host.listen_addrs()[0].split("/")[4])
        assert await _negotiate(port, "/noise") == b"/noise\n"
        for insecure in ("/plaintext/2.0.0", "/secio/1.0.0", "/tls/1.0.0"):
            assert await _negotiate(port, insecure) == b"na\n"


async def test_a_large_negative_score_cuts_a_peer_off_both_ways() -> None:
    async with open_hosts(2) as [a, b]:
        a_channel = await a.subscribe(TOPIC)
        b_channel = await b.subscribe(TOPIC)
        await mesh(a, b)
        await mesh(b, a)
        await b.publish(TOPIC, b"before")
        assert (await receive(a_channel)).data == b"before"

        a.adjust_score(b.peer_id, -1000)
        assert a.score(b.peer_id) <= -1000
        await b.publish(TOPIC, b"from b while graylisted")
        await a.publish(TOPIC, b"from a while graylisted")
        await nothing_arrives(a_channel)
        await nothing_arrives(b_channel)

        # Restored, a sends to b again. (Not necessarily b to a at once: b's GRAFT can land
        # after the graylisting, be answered with a PRUNE, and keep b off a for a 60 s backoff.)
        a.adjust_score(b.peer_id, +1000)
        await a.publish(TOPIC, b"after")
        with trio.fail_after(STEP_S):
            while (await b_channel.receive()).data != b"after":
                pass  # gossip may now repair what the gate held back: allowed, not required


async def test_bad_addresses_unreachable_bootstrap_and_taken_ports_raise_network_error() -> None:
    async with open_hosts(1) as [host]:
        for addr in ("not a multiaddr", "/ip4/127.0.0.1/tcp/1", host.listen_addrs()[0]):
            with pytest.raises(NetworkError):
                await host.connect(addr)
        dead = f"/ip4/127.0.0.1/tcp/1/p2p/{expected_peer_id(seed(9))}"
        with trio.fail_after(STEP_S), pytest.raises(NetworkError, match=dead):
            await host.connect(dead)
    with trio.fail_after(STEP_S), pytest.raises(NetworkError, match="no bootstrap peer"):
        async with open_libp2p_network(seed(2), bootstrap=[dead]):
            pass
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for listen in (f"/ip4/127.0.0.1/tcp/{port}", "/ip4/127.0.0.1/udp/9", "nonsense"):
            with pytest.raises(NetworkError, match=r"listen|multiaddr"):
                async with open_libp2p_network(seed(3), listen=listen):
                    pass


async def test_a_body_exception_comes_out_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with open_libp2p_network(seed(1)):
            raise KeyError("body")


async def test_shutdown_closes_every_socket_quickly() -> None:
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    async with open_hosts(3) as [a, b, _c]:
        await a.subscribe(TOPIC)
        await b.subscribe(TOPIC)
        a.handle_requests(ECHO, lambda peer, request: _answer(request))
        with trio.fail_after(STEP_S):
            assert await b.request(a.peer_id, ECHO, b"x") == b"x"
        started = trio.current_time()
    assert trio.current_time() - started < 2.0
    gc.collect()  # a leaked socket would raise its ResourceWarning (an error here) now
    assert len(os.listdir("/proc/self/fd")) == before


async def test_a_close_cut_short_still_closes_every_socket(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    # A graceful close that outlasts its bound (here: a writer holding b's yamux write lock, as
    # one stuck on a full socket buffer does; on a loaded host, plain slowness) used to leave
    # b's dialed socket open until the GC's ResourceWarning failed some later test.
    monkeypatch.setattr(libp2p_host, "CLOSE_TIMEOUT_S", 0.2)  # not 5 s of the test's time
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    async with open_hosts(2) as [_a, b]:
        [conn] = b._host.get_network().get_connections()
        await conn.muxed_conn._write_lock.acquire()  # type: ignore[attr-defined]
    assert len(os.listdir("/proc/self/fd")) == before
    gc.collect()  # a leaked socket would raise its ResourceWarning (an error here) now


async def _answer(request: bytes) -> bytes:
    await trio.lowlevel.checkpoint()
    return request
