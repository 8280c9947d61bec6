"""The real `Network`: a py-libp2p host (TCP + Noise + yamux) with GossipSub; the one module that
imports libp2p, and where its defaults and failure modes are configured away or contained."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import multiaddr  # type: ignore[import-untyped]  # libp2p's own dependency; ships no types
import trio
from google.protobuf.message import DecodeError
from libp2p import new_host
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_noise_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.score import PeerScorer, ScoreParams, TopicScoreParams
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from node.network import (
    MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES,
    GossipMessage,
    Network,
    NetworkError,
    RequestHandler,
    Validator,
)
from node.p2p_exchange import exchange, reset_stream, serve
from node.p2p_pacing import PublishPacer

SEED_BYTES = 32
BOOTSTRAP_TIMEOUT_S = 20.0
CLOSE_TIMEOUT_S = 5.0
ADDR_TTL_S = 3600
SUBSCRIPTION_BUFFER = 256
PEER_EVENT_BUFFER = 256
MESH_DEGREE, MESH_DEGREE_LOW, MESH_DEGREE_HIGH = 6, 4, 12  # go-libp2p's D, D_lo, D_hi
# py-libp2p drops (and penalises) more than this many messages per second per topic from one
# forwarder, our own publishes included; `publish` paces ours below it instead of losing them.
SPAM_CAP_PER_TOPIC_S = 50.0
OUTBOUND_QUEUE_ROOM = 16  # `publish` waits (up to ROOM_WAIT_S) while a peer's queue is longer
ROOM_WAIT_S = 2.0  # then publishes anyway: a stalled peer loses it, and sync repairs that
IDONTWANT_MIN_BYTES = 1024  # go-libp2p's IDontWantMessageThreshold (rust: 1000, js: 512)
READ_CHUNK_BYTES = 64 * 1024  # an inbound pubsub stream is read this much at a time
# Peer score thresholds (gossipsub v1.1); py-libp2p's defaults are -inf, i.e. scoring off.
# Application standing (`adjust_score`) counts 1:1: at the trust layer's -50 per mismatch, a
# peer's messages stop flowing either way after its second mismatch.
GOSSIP_THRESHOLD = -10.0  # below: no gossip (IHAVE) to or from it, no mesh forwarding to it
PUBLISH_THRESHOLD = -50.0  # below: its messages are dropped and ours are not sent to it
GRAYLIST_THRESHOLD = -100.0  # below: its GRAFTs are refused too (node.memnet's graylist)
INVALID_MESSAGE_WEIGHT, INVALID_MESSAGE_CAP = 20.0, 10.0  # per message a validator rejects
BEHAVIOUR_PENALTY_THRESHOLD = 10.0  # libp2p's own penalties (floods, IWANT spam, equivocation)
PENALTY_HALF_LIFE_S = 60.0

_PROTOCOLS = [PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID]  # highest first, or py picks 1.0
# What a failing stream, connection or dial raises inside py-libp2p (its exceptions derive from
# BaseLibp2pError; sockets and trio streams surface the others).
_LIBP2P_ERRORS = (BaseLibp2pError, OSError, trio.BrokenResourceError, trio.ClosedResourceError)
_Libp2pValidator = Callable[[ID, rpc_pb2.Message], bool]


@asynccontextmanager
async def open_libp2p_network(
    private_key: bytes,
    listen: str = "/ip4/127.0.0.1/tcp/0",
    bootstrap: Sequence[str] = (),
    heartbeat_s: float = 1.0,
) -> AsyncIterator[Network]:
    """A running host whose peer id is the libp2p Ed25519 id of `private_key` (a 32-byte seed).

    Dials `bootstrap` (NetworkError if none answers within BOOTSTRAP_TIMEOUT_S). Our errors and
    the body's come out as themselves, not wrapped in py-libp2p's nested nursery groups."""
    if len(private_key) != SEED_BYTES:
        raise ValueError(f"private_key must be a {SEED_BYTES}-byte Ed25519 seed")
    logger = logging.getLogger("libp2p")
    if not logger.handlers:  # unless LIBP2P_DEBUG is set, keep its warnings off our stderr
        logger.addHandler(logging.NullHandler())
    listen_addr = _multiaddr(listen)
    raised: BaseException | None = None  # ours or the body's, to come out bare
    try:
        async with AsyncExitStack() as stack:
            try:
                network = await _start(stack, private_key, listen_addr, heartbeat_s)
                with trio.move_on_after(BOOTSTRAP_TIMEOUT_S):
                    await _bootstrap(network, bootstrap)
                if bootstrap and not network.connected_peers():
                    raise NetworkError(f"no bootstrap peer answered: {', '.join(bootstrap)}")
            except NetworkError as error:
                raised = error
                raise
            try:
                yield network
            except BaseException as error:
                raised = error
                raise
    except BaseExceptionGroup as group:
        if raised is not None and _leaves(group) == [raised]:
            raise raised from None  # eight of py-libp2p's nurseries deep otherwise
        raise


async def _start(
    stack: AsyncExitStack, seed: bytes, listen_addr: multiaddr.Multiaddr, heartbeat_s: float
) -> Libp2pNetwork:
    host, pubsub, router, scorer = _build(seed, listen_addr, heartbeat_s)
    try:
        await stack.enter_async_context(host.run([listen_addr]))
    except _LIBP2P_ERRORS as error:
        raise NetworkError(f"cannot listen on {listen_addr}: {error!r}") from error
    if not host.get_transport_addrs():  # py-libp2p only logs a failed bind (port taken, not TCP)
        raise NetworkError(f"cannot listen on {listen_addr}")
    await stack.enter_async_context(background_trio_service(pubsub))
    await stack.enter_async_context(background_trio_service(router))
    await pubsub.wait_until_ready()
    stack.push_async_callback(_close_host, host)  # after our tasks end, before the services
    nursery = await stack.enter_async_context(trio.open_nursery())
    stack.callback(nursery.cancel_scope.cancel)
    network = Libp2pNetwork(host, pubsub, router, scorer, nursery, heartbeat_s)
    stack.callback(network._peer_event_sender.close)
    stack.callback(network._close_subscriptions)
    return network


class Libp2pNetwork:
    """`Network` over py-libp2p; made by `open_libp2p_network`, which owns its lifetime."""

    def __init__(
        self,
        host: IHost,
        pubsub: _SerialPubsub,
        router: GossipSub,
        scorer: _FullScorer,
        nursery: trio.Nursery,
        heartbeat_s: float,
    ) -> None:
        self._host = host
        self._heartbeat_s = heartbeat_s
        self._pubsub = pubsub
        self._router = router
        self._scorer = scorer
        self._nursery = nursery
        self._own_id = host.get_id()
        self._pacer = PublishPacer(SPAM_CAP_PER_TOPIC_S)
        self._peer_event_sender, self._peer_events = trio.open_memory_channel[str](
            PEER_EVENT_BUFFER
        )
        self._subscribers: dict[str, trio.MemorySendChannel[GossipMessage]] = {}
        pubsub.on_message = self._deliver
        host.get_network().register_notifee(_PeerEvents(self))
        self.handler_failures = 0  # request handlers that raised or answered oversize
        self.validator_failures = 0  # validators that raised (counted as rejections)
        self.dropped_peer_events = 0  # nobody was reading peer_events()
        self.dropped_messages = 0  # gossip a subscriber was too far behind to take

    @property
    def peer_id(self) -> str:
        return self._own_id.to_base58()

    def listen_addrs(self) -> list[str]:
        suffix = f"/p2p/{self.peer_id}"
        return [
            f"{expanded}{suffix}"
            for addr in self._host.get_transport_addrs()
            for expanded in multiaddr.utils.get_thin_waist_addresses(addr) or [addr]
        ]

    def connected_peers(self) -> list[str]:
        return [peer.to_base58() for peer in self._host.get_connected_peers()]

    async def connect(self, addr: str) -> str:
        info = _peer_info(addr)
        peer = info.peer_id.to_base58()
        if info.peer_id == self._own_id:
            raise NetworkError(f"{addr} is this node's own address")
        swarm = self._host.get_network()
        if all(conn.is_closed for conn in swarm.get_connections(info.peer_id)):
            self._host.get_peerstore().add_addrs(info.peer_id, info.addrs, ADDR_TTL_S)
            try:
                # dial_addr, not host.connect: that dials one TCP address of all the peer ever
                # advertised (not necessarily `addr`) and waits out a 250 ms happy-eyeballs
                # delay even after success; a failed dial_peer also blocks the peer for 60 s.
                await swarm.dial_addr(info.addrs[0], info.peer_id)
            except _LIBP2P_ERRORS as error:
                raise NetworkError(f"{peer}: cannot connect via {addr}: {error!r}") from error
        return peer

    async def subscribe(
        self, topic: str, validator: Validator | None = None
    ) -> trio.MemoryReceiveChannel[GossipMessage]:
        """One subscriber per topic; closing the returned channel unsubscribes."""
        if topic in self._pubsub.topic_ids:
            raise ValueError(f"already subscribed to {topic}")
        self._pubsub.set_topic_validator(topic, self._topic_validator(validator), False)
        sender, receiver = trio.open_memory_channel[GossipMessage](SUBSCRIPTION_BUFFER)
        self._subscribers[topic] = sender
        await self._pubsub.subscribe(topic)
        return receiver

    async def publish(self, topic: str, data: bytes) -> None:
        """Waits while our publishes on `topic` would exceed SPAM_CAP_PER_TOPIC_S, and while a
        peer's outbound queue is backed up (see _SerialPubsub)."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise ValueError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
        await self._pacer.wait_turn(topic)
        with trio.move_on_after(ROOM_WAIT_S):
            await self._pubsub.wait_for_room()
        await self._pubsub.publish(topic, data)

    def handle_requests(self, protocol: str, handler: RequestHandler) -> None:
        async def answer(stream: INetStream) -> None:
            peer = stream.muxed_conn.peer_id.to_base58()
            if not await serve(stream, peer, handler, _LIBP2P_ERRORS):
                self.handler_failures += 1

        self._host.set_stream_handler(TProtocol(protocol), answer)

    async def request(self, peer: str, protocol: str, data: bytes) -> bytes:
        """Unbounded in time: wrap it in the caller's `trio.fail_after`."""
        if len(data) > MAX_REQUEST_BYTES:
            raise NetworkError(f"request to {peer} is {len(data)} bytes, over {MAX_REQUEST_BYTES}")
        peer_id = _peer_id(peer)
        try:
            stream = await self._host.new_stream(peer_id, [TProtocol(protocol)])
        except _LIBP2P_ERRORS as error:
            raise NetworkError(f"{peer}: cannot open {protocol}: {error!r}") from error
        try:
            return await exchange(stream, data, _LIBP2P_ERRORS)
        except NetworkError as error:
            raise NetworkError(f"{peer}: {protocol}: {error}") from error

    def adjust_score(self, peer: str, delta: float) -> None:
        """Kept across reconnects; GossipSub reads it as the application-specific score."""
        standing = self._scorer.standing
        standing[peer] = standing.get(peer, 0.0) + delta

    def peer_events(self) -> trio.MemoryReceiveChannel[str]:
        """One reader: every call returns the same channel."""
        return self._peer_events

    def score(self, peer: str) -> float:
        """The router's score for `peer` over our topics, the number its gates compare."""
        return self._scorer.score(_peer_id(peer), list(self._pubsub.topic_ids))

    async def wait_mesh(self, peer: str, topic: str) -> None:
        """Until `peer` is in our mesh for `topic` (so our publishes go to it); no timeout."""
        peer_id = _peer_id(peer)
        while peer_id not in self._router.mesh.get(topic, ()):
            # Re-checked every heartbeat: the cleanup of a peer's old connection can drop the
            # router's event without setting it, leaving a plain wait hanging forever.
            with trio.move_on_after(self._heartbeat_s):
                await self._router.wait_for_mesh(peer_id, topic, timeout=math.inf)

    def _topic_validator(self, validator: Validator | None) -> _Libp2pValidator:
        own = self._own_id.to_bytes()

        def check(forwarder: ID, message: rpc_pb2.Message) -> bool:
            if message.from_id == own:
                return True  # checked by `publish`; the validator guards against peers
            if len(message.data) > MAX_MESSAGE_BYTES:
                return False
            if validator is None:
                return True
            try:
                return bool(validator(ID(message.from_id).to_base58(), bytes(message.data)))
            except Exception:  # noqa: BLE001  # py-libp2p lets one stop all of pubsub
                self.validator_failures += 1
                return False

        return check

    def _deliver(self, topic: str, message: rpc_pb2.Message) -> None:
        """Hands a validated message to the topic's subscriber without waiting: one who falls
        SUBSCRIPTION_BUFFER behind loses messages (it still forwards them; sync repairs)."""
        sender = self._subscribers.get(topic)
        if sender is None or message.from_id == self._own_id.to_bytes():
            return  # libp2p hands our own publishes back to us
        source = ID(message.from_id).to_base58()
        try:
            sender.send_nowait(GossipMessage(topic, source, bytes(message.data)))
        except trio.WouldBlock:
            self.dropped_messages += 1
        except trio.BrokenResourceError:  # the subscriber closed its end
            del self._subscribers[topic]
            self._nursery.start_soon(self._unsubscribe, topic)

    async def _unsubscribe(self, topic: str) -> None:
        self._pubsub.remove_topic_validator(topic)
        await self._pubsub.unsubscribe(topic)

    def _close_subscriptions(self) -> None:
        for sender in self._subscribers.values():
            sender.close()
        self._subscribers.clear()


class _SerialPubsub(Pubsub):
    """Pubsub that writes one RPC at a time per stream and lets a publisher wait for room.

    py-libp2p writes to a peer's pubsub stream from several tasks (the send loop, replays of
    recent messages to a new subscriber, flushes of pending ones) and yamux cuts writes into
    64 KiB frames, so two RPCs over 64 KiB interleave and corrupt the stream (reproduced: 200 KB
    messages published as a peer subscribes). And it drops whatever overflows a peer's 32-RPC
    outbound queue (each publish queues two: the message and an IDONTWANT)."""

    def __init__(self, host: IHost, router: GossipSub) -> None:
        super().__init__(
            host,
            router,
            strict_signing=True,
            # A content hash, the same on every node: the default (sender + seqno) differs from
            # js-libp2p's, and py's alternatives mix in the receiver's clock, which breaks
            # de-duplication.
            msg_id_constructor=_message_id,
        )
        self._write_locks = weakref.WeakKeyDictionary[INetStream, trio.Lock]()
        self._written = trio.Event()
        self.on_message: Callable[[str, rpc_pb2.Message], None] = lambda topic, message: None

    def notify_subscriptions(self, publish_message: rpc_pb2.Message) -> None:
        # Straight to `on_message`, not into a channel of py-libp2p's (32 deep, dropping when
        # full) that a task of ours would then drain: a task hop per message fewer (measured:
        # ~15 ms each with 25 busy hosts in one process).
        for topic in publish_message.topicIDs:
            if topic in self.topic_ids:
                self.on_message(topic, publish_message)

    async def write_msg(self, stream: INetStream, rpc_msg: rpc_pb2.RPC) -> bool:
        # py-libp2p attaches its signed peer record to every RPC and the receiver verifies it
        # (Ed25519, peerstore update) every time; peers already get it in the hello that opens
        # each stream, which is written past this method. (An RPC queued for several peers
        # loses it for all of them, as it should.)
        rpc_msg.ClearField("senderRecord")
        async with self._write_locks.setdefault(stream, trio.Lock()):
            written = await super().write_msg(stream, rpc_msg)
        self._written.set()
        self._written = trio.Event()
        return written

    async def wait_for_room(self) -> None:
        """Until every peer's outbound queue is at most OUTBOUND_QUEUE_ROOM long."""
        while any(len(queue) > OUTBOUND_QUEUE_ROOM for queue in self.peer_queues.values()):
            await self._written.wait()


class _GossipSub(GossipSub):
    """GossipSub that sends IDONTWANT only for messages of IDONTWANT_MIN_BYTES or more, as go,
    rust and js libp2p do. py-libp2p sends one, as an RPC of its own, to every mesh peer for
    every message: for small records that costs more than the duplicate it might spare (measured,
    25 nodes: 136 of 225 RPCs per record, and ~2/3 of the CPU of spreading it)."""

    _idontwant_due = False

    async def publish(self, msg_forwarder: ID, pubsub_msg: rpc_pb2.Message) -> None:
        # Read by _emit_idontwant_for_message, which the base publish calls before its first
        # checkpoint: no other publish runs in between.
        self._idontwant_due = len(pubsub_msg.data) >= IDONTWANT_MIN_BYTES
        await super().publish(msg_forwarder, pubsub_msg)

    async def _emit_idontwant_for_message(self, msg_id: bytes, topic_ids: Iterable[str]) -> None:
        if self._idontwant_due:
            await super()._emit_idontwant_for_message(msg_id, topic_ids)


class _ChunkedStream(INetStream):
    """An inbound pubsub stream read READ_CHUNK_BYTES at a time. py-libp2p reads each RPC's
    length prefix one byte per `read`, and its yamux answers every `read` with a WINDOW_UPDATE
    frame: three frames back per RPC received, each encrypted, written and parsed."""

    def __init__(self, stream: INetStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self.muxed_conn = stream.muxed_conn
        self.metric_send_channel = stream.metric_send_channel

    async def read(self, n: int | None = None) -> bytes:
        if not self._buffer:
            self._buffer += await self._stream.read(READ_CHUNK_BYTES)
        size = len(self._buffer) if n is None or n < 0 else n
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        return chunk

    async def write(self, data: bytes) -> None:
        await self._stream.write(data)

    async def close(self) -> None:
        await self._stream.close()

    async def reset(self) -> None:
        await self._stream.reset()

    def get_protocol(self) -> TProtocol | None:
        return self._stream.get_protocol()

    def set_protocol(self, protocol_id: TProtocol) -> None:
        self._stream.set_protocol(protocol_id)

    def get_remote_address(self) -> tuple[str, int] | None:
        return self._stream.get_remote_address()


class _FullScorer(PeerScorer):
    """Gates on the whole score, as gossipsub v1.1 specifies: py-libp2p's single-topic
    `allow_publish`/`allow_gossip` leave out the application-specific score (P6). Holds that
    score: `adjust_score`'s running sums by peer, kept across reconnects."""

    standing: dict[str, float]

    def __init__(self, params: ScoreParams) -> None:
        super().__init__(params)
        self.standing = {}

    def allow_publish(self, peer: ID, topics: list[str]) -> bool:
        return bool(topics) and self.score(peer, topics) >= self.params.publish_threshold

    def allow_gossip(self, peer: ID, topics: list[str]) -> bool:
        return bool(topics) and self.score(peer, topics) >= self.params.gossip_threshold


class _PeerEvents(INotifee):
    """Feeds `peer_events()` from the swarm's connection notifications (dialed and accepted)."""

    def __init__(self, owner: Libp2pNetwork) -> None:
        self._owner = owner

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        owner = self._owner
        try:
            owner._peer_event_sender.send_nowait(conn.muxed_conn.peer_id.to_base58())
        except trio.WouldBlock:
            owner.dropped_peer_events += 1
        except trio.ClosedResourceError:  # shutting down
            pass

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        pass

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


def _build(
    seed: bytes, listen_addr: multiaddr.Multiaddr, heartbeat_s: float
) -> tuple[IHost, _SerialPubsub, GossipSub, _FullScorer]:
    key_pair = create_new_key_pair(seed)
    host = new_host(
        key_pair=key_pair,
        # Noise only: by default py-libp2p also accepts plaintext, secio and TLS peers.
        sec_opt={
            NOISE_PROTOCOL_ID: NoiseTransport(
                key_pair, noise_privkey=create_noise_key_pair().private_key
            )
        },
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        listen_addrs=[listen_addr],
        # One connection per peer: with more allowed, every dial waits out the 250 ms
        # happy-eyeballs delay for a second connection that is never made.
        connection_config=ConnectionConfig(max_connections_per_peer=1),
        # Advertise what we listen on, not the ephemeral ports peers saw us dial from.
        disable_identify_address_discovery=True,
    )
    decay = 0.5 ** (heartbeat_s / PENALTY_HALF_LIFE_S)  # libp2p decays once per heartbeat
    params = ScoreParams(
        p4_invalid_messages=TopicScoreParams(
            weight=INVALID_MESSAGE_WEIGHT, cap=INVALID_MESSAGE_CAP, decay=decay
        ),
        p5_behavior_penalty_weight=1.0,
        p5_behavior_penalty_decay=decay,
        p5_behavior_penalty_threshold=BEHAVIOUR_PENALTY_THRESHOLD,
        p6_appl_slack_weight=1.0,
        publish_threshold=PUBLISH_THRESHOLD,
        gossip_threshold=GOSSIP_THRESHOLD,
        graylist_threshold=GRAYLIST_THRESHOLD,
        accept_px_threshold=0.0,
    )
    router = _GossipSub(
        protocols=_PROTOCOLS,
        degree=MESH_DEGREE,
        degree_low=MESH_DEGREE_LOW,
        degree_high=MESH_DEGREE_HIGH,
        heartbeat_interval=heartbeat_s,  # type: ignore[arg-type]  # int-annotated; default 120 s
        # Adaptive gossip stretches the heartbeat to 60 s about 30 s after start.
        adaptive_gossip_enabled=False,
        max_messages_per_topic_per_second=SPAM_CAP_PER_TOPIC_S,
    )
    router.scorer = scorer = _FullScorer(params)
    params.app_specific_score_fn = lambda peer: scorer.standing.get(peer.to_base58(), 0.0)
    pubsub = _SerialPubsub(host, router)

    async def read_rpcs(stream: INetStream) -> None:
        try:
            await pubsub.stream_handler(_ChunkedStream(stream))
        except DecodeError:
            # py-libp2p catches its own parse errors here but not protobuf's, which then stops
            # the whole swarm: one malformed RPC from any peer would take this host down (and
            # an unpatched py-libp2p peer sends them: see _SerialPubsub). Drop the connection
            # it came on (not host.disconnect: that also forgets any newer connection to the
            # peer made meanwhile, leaving it open but untracked).
            await reset_stream(stream, _LIBP2P_ERRORS)
            for conn in host.get_network().get_connections(stream.muxed_conn.peer_id):
                if conn.muxed_conn is stream.muxed_conn:
                    await _close_connection(conn)

    for protocol in _PROTOCOLS:
        host.set_stream_handler(protocol, read_rpcs)  # replaces pubsub's own registration
    return host, pubsub, router, scorer


def _message_id(message: rpc_pb2.Message) -> bytes:
    return hashlib.sha256(message.data).digest()


async def _bootstrap(network: Libp2pNetwork, addrs: Sequence[str]) -> None:
    async def dial(addr: str) -> None:
        with contextlib.suppress(NetworkError):
            await network.connect(addr)

    async with trio.open_nursery() as nursery:
        for addr in addrs:
            nursery.start_soon(dial, addr)


async def _close_host(host: IHost) -> None:
    # Closed explicitly, shielded and bounded: stopping py-libp2p's services instead cancels
    # the swarm's own connection-closing loop at its first await and leaks every socket
    # (https://github.com/libp2p/py-libp2p/issues/1485, and #1486: "which the manager-cancel
    # path can't fully do"). Connections close concurrently: each takes ~0.2 s of sleeps.
    with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
        async with trio.open_nursery() as nursery:
            for conn in host.get_network().get_connections():
                nursery.start_soon(_close_connection, conn)
        await host.close()


async def _close_connection(conn: INetConn) -> None:
    with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True), contextlib.suppress(*_LIBP2P_ERRORS):
        await conn.close()


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found


def _multiaddr(text: str) -> multiaddr.Multiaddr:
    try:
        return multiaddr.Multiaddr(text)
    except (ValueError, multiaddr.exceptions.Error) as error:
        raise NetworkError(f"not a multiaddr: {text!r} ({error})") from error


def _peer_info(addr: str) -> PeerInfo:
    try:
        return info_from_p2p_addr(_multiaddr(addr))
    except (ValueError, multiaddr.exceptions.Error) as error:
        raise NetworkError(f"{addr!r} needs a /p2p/<peer id> ending ({error})") from error


def _peer_id(peer: str) -> ID:
    try:
        return ID.from_base58(peer)
    except ValueError as error:
        raise NetworkError(f"not a peer id: {peer!r}") from error
