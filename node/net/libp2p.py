"""The real `Network`: a py-libp2p host (TCP + Noise + yamux) with GossipSub. With
node/net/libp2p_host.py (how the host is built and closed) it is the only code that imports libp2p;
py-libp2p's exceptions stop here and come out as NetworkError."""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import multiaddr  # type: ignore[import-untyped]  # libp2p's own dependency; ships no types
import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.tools.anyio_service import background_trio_service

from node.net.bounded_table import bound_negatives
from node.net.exchange import close_stream, exchange, read_exactly, reset_stream, serve
from node.net.libp2p_host import (
    _LIBP2P_ERRORS,
    MESH_DEGREE_HIGH,
    OWN_PUBLISH_PER_S,
    _build,
    _close_connection,
    _close_host,
    _FullScorer,
    _multiaddr,
    _peer_id,
    _peer_info,
    _PeerEvents,
    _SerialPubsub,
)
from node.net.mdns import Sighting, interfaces_for, open_mdns
from node.net.network import (
    MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES,
    GossipMessage,
    NetworkError,
    RequestHandler,
    Validator,
    network_group,
)
from node.net.pacing import PublishPacer

SEED_BYTES = 32
BOOTSTRAP_TIMEOUT_S = 20.0
ADDR_TTL_S = 3600
SUBSCRIPTION_BUFFER = 256
PEER_EVENT_BUFFER = 256
ROOM_WAIT_S = 2.0  # then publishes anyway: a stalled peer loses it, and sync repairs that
MDNS_DIALS = 4  # peers heard by mDNS dialed at once; the others wait (or drop) in its channel
MDNS_ENOUGH_PEERS = MESH_DEGREE_HIGH  # connected to this many, mDNS dials no more
MDNS_DIAL_TIMEOUT_S = 10.0  # per address tried
PING_PROTOCOL = TProtocol("/ipfs/ping/1.0.0")  # served by py-libp2p's host itself
PING_BYTES = 32

_Libp2pValidator = Callable[[ID, rpc_pb2.Message], bool]


@asynccontextmanager
async def open_libp2p_network(
    private_key: bytes,
    listen: str = "/ip4/127.0.0.1/tcp/0",
    bootstrap: Sequence[str] = (),
    heartbeat_s: float = 1.0,
    mdns: bool = False,
) -> AsyncIterator[Libp2pNetwork]:
    """A running host whose peer id is the libp2p Ed25519 id of `private_key` (a 32-byte seed).

    Dials `bootstrap` (NetworkError if none answers within BOOTSTRAP_TIMEOUT_S). With `mdns`,
    announces itself and dials the peers it hears by mDNS on the interface it listens on (on
    every interface for a wildcard address). Our errors and the body's come out as themselves,
    not wrapped in py-libp2p's nested nursery groups."""
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
                network = await _start(stack, private_key, listen_addr, heartbeat_s, mdns)
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


async def _start(stack: AsyncExitStack, seed: bytes, listen_addr: multiaddr.Multiaddr,
                 heartbeat_s: float, mdns: bool) -> Libp2pNetwork:
    host, pubsub, router, scorer = _build(seed, listen_addr, heartbeat_s)
    stack.callback(pubsub.seen_messages.stop)  # its sweeper thread, which nothing else stops
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
    if mdns:
        interfaces = interfaces_for(str(listen_addr))
        heard = open_mdns(network.peer_id, network.listen_addrs(), interfaces)
        nursery.start_soon(network._dial_sightings, await stack.enter_async_context(heard))
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
        self._pacer = PublishPacer(OWN_PUBLISH_PER_S)
        self._peer_event_sender, self._peer_events = trio.open_memory_channel[str](
            PEER_EVENT_BUFFER
        )
        self._subscribers: dict[str, trio.MemorySendChannel[GossipMessage]] = {}
        pubsub.on_message = self._deliver
        host.get_network().register_notifee(
            _PeerEvents(pubsub.blocked, nursery, self._peer_event_sender, self._drop_peer_event)
        )
        self.handler_failures = 0  # request handlers that raised or answered oversize
        self.validator_failures = 0  # validators that raised (counted as rejections)
        self.dropped_peer_events = 0  # nobody was reading peer_events()
        self.dropped_messages = 0  # gossip a subscriber was too far behind to take
        self.mdns_dial_failures = 0  # peers heard by mDNS that no address of theirs reached

    def _drop_peer_event(self) -> None:
        self.dropped_peer_events += 1

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
        blocked = self._pubsub.blocked
        return [p.to_base58() for p in self._host.get_connected_peers() if p not in blocked]

    async def connect(self, addr: str) -> str:
        info = _peer_info(addr)
        peer = info.peer_id.to_base58()
        if info.peer_id == self._own_id:
            raise NetworkError(f"{addr} is this node's own address")
        if info.peer_id in self._pubsub.blocked:
            raise NetworkError(f"{peer} is blocked")
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
        """Waits while our publishes on `topic` would exceed OWN_PUBLISH_PER_S, and while a
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
            if not await serve(stream, peer, handler, _LIBP2P_ERRORS, _origin(stream)):
                self.handler_failures += 1

        self._host.set_stream_handler(TProtocol(protocol), answer)

    async def request(self, peer: str, protocol: str, data: bytes) -> bytes:
        """Unbounded in time: wrap it in the caller's `trio.fail_after`."""
        if len(data) > MAX_REQUEST_BYTES:
            raise NetworkError(f"request to {peer} is {len(data)} bytes, over {MAX_REQUEST_BYTES}")
        peer_id = _peer_id(peer)
        if peer_id in self._pubsub.blocked:
            raise NetworkError(f"{peer} is blocked")
        try:
            stream = await self._host.new_stream(peer_id, [TProtocol(protocol)])
        except _LIBP2P_ERRORS as error:
            raise NetworkError(f"{peer}: cannot open {protocol}: {error!r}") from error
        try:
            return await exchange(stream, data, _LIBP2P_ERRORS)
        except NetworkError as error:
            raise NetworkError(f"{peer}: {protocol}: {error}") from error

    async def ping(self, peer: str) -> float:
        """One libp2p ping (`/ipfs/ping/1.0.0`) on a new stream, as js-libp2p's connection
        monitor sends one every 10 s: seconds from opening the stream to the echo, stream
        negotiation included. Unbounded in time (the caller's `fail_after`); NetworkError."""
        payload = secrets.token_bytes(PING_BYTES)
        start = time.perf_counter()
        try:
            stream = await self._host.new_stream(_peer_id(peer), [PING_PROTOCOL])
        except _LIBP2P_ERRORS as error:
            raise NetworkError(f"{peer}: cannot open {PING_PROTOCOL}: {error!r}") from error
        try:
            await stream.write(payload)
            echo = await read_exactly(stream, PING_BYTES)
        except _LIBP2P_ERRORS as error:
            await reset_stream(stream, _LIBP2P_ERRORS)
            raise NetworkError(f"{peer}: ping failed: {error!r}") from error
        elapsed = time.perf_counter() - start
        await close_stream(stream, _LIBP2P_ERRORS)
        if bytes(echo) != payload:
            raise NetworkError(f"{peer}: the ping echo differs")
        return elapsed

    async def block(self, peers: Iterable[str]) -> None:
        """Cut `peers` off until `unblock`: closes our connections to them, refuses new ones
        either way, drops RPCs from and to them meanwhile (gossip included); requests to them
        raise NetworkError."""
        ids = [_peer_id(peer) for peer in peers]
        self._pubsub.blocked.update(ids)
        swarm = self._host.get_network()
        async with trio.open_nursery() as nursery:
            for peer_id in ids:
                for conn in swarm.get_connections(peer_id):
                    nursery.start_soon(_close_connection, conn)

    def unblock(self, peers: Iterable[str]) -> None:
        """Lets `peers` connect again; what `block` closed stays closed until dialed again."""
        self._pubsub.blocked.difference_update(_peer_id(peer) for peer in peers)

    def adjust_score(self, peer: str, delta: float) -> None:
        """Kept across reconnects; GossipSub reads it as the application-specific score."""
        standing = self._scorer.standing
        standing[peer] = standing.get(peer, 0.0) + delta
        bound_negatives(standing)  # peer ids are free (node/net/bounded_table.py)

    def decay_scores(self, factor: float) -> None:
        standing = self._scorer.standing
        for peer, score in standing.items():
            if score < 0:
                standing[peer] = score * factor

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

    async def _dial_sightings(self, sightings: trio.MemoryReceiveChannel[Sighting]) -> None:
        """Dials peers heard by mDNS: MDNS_DIALS at a time, a peer once while it is being
        dialed or connected, and none once MDNS_ENOUGH_PEERS are connected."""
        dialing: set[str] = set()
        slots = trio.Semaphore(MDNS_DIALS)
        async with trio.open_nursery() as nursery:
            async for sighting in sightings:
                connected = self.connected_peers()
                known = sighting.peer in dialing or sighting.peer in connected
                if known or len(connected) >= MDNS_ENOUGH_PEERS:
                    continue
                await slots.acquire()
                dialing.add(sighting.peer)
                nursery.start_soon(self._dial_sighting, sighting, slots, dialing)

    async def _dial_sighting(
        self, sighting: Sighting, slots: trio.Semaphore, dialing: set[str]
    ) -> None:
        try:
            for addr in sighting.addrs:
                with trio.move_on_after(MDNS_DIAL_TIMEOUT_S), contextlib.suppress(NetworkError):
                    await self.connect(addr)
                    return
            self.mdns_dial_failures += 1
        finally:
            dialing.discard(sighting.peer)
            slots.release()

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


async def _bootstrap(network: Libp2pNetwork, addrs: Sequence[str]) -> None:
    async def dial(addr: str) -> None:
        with contextlib.suppress(NetworkError):
            await network.connect(addr)

    async with trio.open_nursery() as nursery:
        for addr in addrs:
            nursery.start_soon(dial, addr)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found


def _origin(stream: INetStream) -> str | None:
    """The network group (`network_group`) of the address a stream came from, or None."""
    try:
        address = stream.get_remote_address()
    except (AttributeError, OSError, ValueError):  # no address: the peer id will do
        return None
    return None if not address else network_group(str(address[0]))
