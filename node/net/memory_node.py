"""One node's view of the in-memory network (`MemoryNetwork`, meeting the `Network` role): its
links, subscriptions, requests, scores and seen-message cache; node/net/memory.py's hub carries
its hops."""

from __future__ import annotations

import hashlib
import random
from collections import Counter, deque
from collections.abc import Iterable
from contextlib import suppress
from typing import Protocol

import trio

from node.net.bounded_table import bound_negatives
from node.net.network import (
    MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
    REQUEST_ORIGIN,
    GossipMessage,
    NetworkError,
    RequestHandler,
    Validator,
)

CHANNEL_SIZE = 1024  # per subscription and for peer events; a full channel drops, never blocks
GRAYLIST_THRESHOLD = -100.0  # below it a node ignores the peer, as GossipSub's graylist does
SEEN_TTL_S = 120.0  # how long a message id stays de-duplicated (GossipSub's seen cache)


_Subscription = tuple[trio.MemorySendChannel[GossipMessage], Validator | None]
# A message in transit: (the time it arrives or leaves, the message, its id: sha256 of data).
_Message = tuple[float, GossipMessage, bytes]


class Hub(Protocol):
    """What a node asks of its hub (node/net/memory.py's `MemoryHub`)."""

    seed: int
    loss: float
    origins: dict[str, str | None]  # each node's network group (its requests' REQUEST_ORIGIN)

    def _delay(self, rng: random.Random) -> float: ...

    def _reach(self, sender: MemoryNetwork, peer_id: str) -> MemoryNetwork: ...

    def _forward(self, node: MemoryNetwork, came_from: str | None, hop: _Message) -> None: ...

    def _resolve_due(self) -> None: ...


def parse_memory_addr(addr: str) -> str:
    """The peer id in `/memory/<id>` (or `/memory/<id>/p2p/<id>`); NetworkError otherwise."""
    parts = addr.split("/")
    plain = len(parts) == 3
    with_id = len(parts) == 5 and parts[3] == "p2p" and parts[4] == parts[2]
    if (plain or with_id) and parts[:2] == ["", "memory"] and parts[2]:
        return parts[2]
    raise NetworkError(f"not a memory address: {addr!r} (expected /memory/<peer id>)")


class MemoryNetwork:
    """One node's view of the hub; meets the `Network` role (plus `score` and `ignores`)."""

    def __init__(self, hub: Hub, peer_id: str, counts: Counter[str]) -> None:
        self._hub, self._peer_id, self._counts = hub, peer_id, counts
        self._up = True
        self._links: dict[str, MemoryNetwork] = {}  # connected peers, in connection order
        self._subscriptions: dict[str, _Subscription] = {}
        self._handlers: dict[str, RequestHandler] = {}
        self._serving: set[trio.CancelScope] = set()  # requests being handled here
        self._event_sender, self._events = trio.open_memory_channel[str](CHANNEL_SIZE)
        self._scores: dict[str, float] = {}
        self._blocked: set[str] = set()
        self._seen: dict[bytes, float] = {}
        self._seen_order: deque[tuple[float, bytes]] = deque()
        self._rng = random.Random(f"{hub.seed}/{peer_id}")

    @property
    def peer_id(self) -> str:
        return self._peer_id

    def listen_addrs(self) -> list[str]:
        return [f"/memory/{self._peer_id}"]

    def connected_peers(self) -> list[str]:
        return list(self._links)

    async def connect(self, addr: str) -> str:
        peer_id = parse_memory_addr(addr)
        if peer_id == self._peer_id:
            raise NetworkError(f"{peer_id} cannot connect to itself")
        hub = self._hub
        await trio.sleep(hub._delay(self._rng) + hub._delay(self._rng))  # dial and handshake
        peer = hub._reach(self, peer_id)
        if self.ignores(peer_id):
            raise NetworkError(f"{self._peer_id} refuses {peer_id} (graylisted)")
        if peer_id not in self._links:
            self._links[peer_id] = peer
            peer._links[self._peer_id] = self
            _offer(self._event_sender, peer_id)
            _offer(peer._event_sender, self._peer_id)
        return peer_id

    async def subscribe(
        self, topic: str, validator: Validator | None = None
    ) -> trio.MemoryReceiveChannel[GossipMessage]:
        await trio.lowlevel.checkpoint()
        self._check_up()
        existing = self._subscriptions.get(topic)
        if existing is not None and existing[0].statistics().open_receive_channels:
            raise ValueError(f"{self._peer_id} is already subscribed to {topic}")
        send, receive = trio.open_memory_channel[GossipMessage](CHANNEL_SIZE)
        self._subscriptions[topic] = (send, validator)
        return receive

    async def publish(self, topic: str, data: bytes) -> None:
        if len(data) > MAX_MESSAGE_BYTES:
            raise ValueError(f"message of {len(data)} bytes is over {MAX_MESSAGE_BYTES}")
        await trio.lowlevel.checkpoint()
        self._check_up()
        mid, now = hashlib.sha256(data).digest(), trio.current_time()
        self._saw(mid, now)  # echoes from peers are duplicates: own publishes never come back
        self._counts["published"] += 1
        self._hub._forward(self, None, (now, GossipMessage(topic, self._peer_id, data), mid))
        self._hub._resolve_due()  # at latency 0 the whole flood: its order is the call order

    def handle_requests(self, protocol: str, handler: RequestHandler) -> None:
        self._handlers[protocol] = handler

    async def request(self, peer: str, protocol: str, data: bytes) -> bytes:
        self._counts["requests"] += 1
        try:
            return await self._request(peer, protocol, data)
        except NetworkError:
            self._counts["failed_requests"] += 1
            raise

    async def _request(self, peer: str, protocol: str, data: bytes) -> bytes:
        if len(data) > MAX_REQUEST_BYTES:
            raise NetworkError(f"request to {peer}: {len(data)} bytes, over {MAX_REQUEST_BYTES}")
        if peer not in self._links:
            raise NetworkError(f"{self._peer_id} is not connected to {peer}")
        server = await self._travel(peer, f"request to {peer}")
        handler = server._handlers.get(protocol)
        if handler is None:
            raise NetworkError(f"{peer} does not serve {protocol}")
        response: bytes | None = None
        with trio.CancelScope() as serving:  # cancelled if the server goes down meanwhile
            server._serving.add(serving)
            token = REQUEST_ORIGIN.set(self._hub.origins.get(self._peer_id))
            try:
                response = await handler(self._peer_id, data)
            # The handler is the serving peer's code: whatever it raises is that peer's failure,
            # which a requester sees as a failed stream, as it would over libp2p.
            except Exception as exc:
                raise NetworkError(f"{peer} failed serving {protocol}: {exc!r}") from exc
            finally:
                REQUEST_ORIGIN.reset(token)
                server._serving.discard(serving)
        if response is None:
            raise NetworkError(f"{peer} went down while serving {protocol}")
        if len(response) > MAX_RESPONSE_BYTES:
            raise NetworkError(f"{peer} answered {len(response)} bytes, over {MAX_RESPONSE_BYTES}")
        await self._travel(peer, f"response from {peer}")
        return response

    async def _travel(self, peer: str, what: str) -> MemoryNetwork:
        """Wait one way's latency, then the peer if the exchange got through."""
        hub = self._hub
        lost = hub.loss > 0 and self._rng.random() < hub.loss
        await trio.sleep(hub._delay(self._rng))
        if lost:
            raise NetworkError(f"{what} was lost")
        return hub._reach(self, peer)

    def adjust_score(self, peer: str, delta: float) -> None:
        self._scores[peer] = self._scores.get(peer, 0.0) + delta
        bound_negatives(self._scores)  # peer ids are free (node/net/bounded_table.py)

    def decay_scores(self, factor: float) -> None:
        for peer, score in self._scores.items():
            if score < 0:
                self._scores[peer] = score * factor

    async def block(self, peers: Iterable[str]) -> None:
        """Unlinks `peers` and refuses them until `unblock` (hops in flight are dropped)."""
        await trio.lowlevel.checkpoint()
        self._blocked.update(peers)
        for peer_id in self._blocked & self._links.keys():
            self._links.pop(peer_id)._links.pop(self._peer_id, None)

    def unblock(self, peers: Iterable[str]) -> None:
        self._blocked.difference_update(peers)

    def score(self, peer: str) -> float:
        return self._scores.get(peer, 0.0)

    def ignores(self, peer: str) -> bool:
        """Whether `peer` is graylisted here: its messages dropped, its requests refused."""
        return self._scores.get(peer, 0.0) < GRAYLIST_THRESHOLD

    def peer_events(self) -> trio.MemoryReceiveChannel[str]:
        return self._events

    def _saw(self, mid: bytes, now: float) -> bool:
        """Whether `mid` was seen within SEEN_TTL_S before `now`; records it as seen."""
        order = self._seen_order
        while order and order[0][0] <= now:
            del self._seen[order.popleft()[1]]
        if mid in self._seen:
            return True
        self._seen[mid] = now + SEEN_TTL_S
        order.append((now + SEEN_TTL_S, mid))
        return False

    def _check_up(self) -> None:
        if not self._up:
            raise NetworkError(f"{self._peer_id} is down")


def _offer(channel: trio.MemorySendChannel[str], item: str) -> None:
    """Send without waiting; a full or abandoned channel loses the item."""
    with suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        channel.send_nowait(item)
