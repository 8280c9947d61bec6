"""An in-memory `Network`: many nodes in one trio process gossiping over a simulated mesh. Here
the hub (links, latency, loss, partitions, the delivery scheduler); each node's view of it is
node/net/memory_node.py's `MemoryNetwork`."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import count

import trio

from node.net.memory_node import (
    CHANNEL_SIZE,
    GRAYLIST_THRESHOLD,
    SEEN_TTL_S,
    MemoryNetwork,
    _Message,
    parse_memory_addr,
)
from node.net.network import NetworkError

INVALID_MESSAGE_PENALTY = -20.0  # six rejected messages graylist a peer (libp2p: cut off ~6)
# Delayed hops fall due on this grid (rounded up, never early), so hops due at nearly the same
# time share one scheduler wake-up: with jitter, 1,000 nodes run ~5x faster under a MockClock.
TICK_S = 0.001


@dataclass(frozen=True)
class NodeStats:
    """Counters for one peer id (over all its lifetimes) or for the whole hub. Every hop sent
    ends as one of delivered, duplicates, rejected, dropped (counted at the receiver) or is
    still in flight."""

    published: int = 0  # messages this node originated
    sent: int = 0  # hops sent: publishes and forwards, including those lost on the way
    delivered: int = 0  # messages handed to this node's subscription channel
    duplicates: int = 0  # hops carrying a message this node had already seen
    rejected: int = 0  # hops this node's validator refused
    dropped: int = 0  # hops lost, partitioned, from/to a down or graylisted node, or overflowed
    requests: int = 0  # requests this node made
    failed_requests: int = 0  # of those, the ones that raised NetworkError


@dataclass(frozen=True)
class HubStats:
    total: NodeStats
    nodes: Mapping[str, NodeStats]
    in_flight: int  # hops scheduled and not yet resolved


# (due time, sequence, sender, receiver, message); the sequence breaks ties in send order.
_Hop = tuple[float, int, "MemoryNetwork", "MemoryNetwork", _Message]

__all__ = [
    "CHANNEL_SIZE",
    "GRAYLIST_THRESHOLD",
    "INVALID_MESSAGE_PENALTY",
    "SEEN_TTL_S",
    "TICK_S",
    "HubStats",
    "MemoryHub",
    "MemoryNetwork",
    "NodeStats",
    "parse_memory_addr",
]


class MemoryHub:
    """The shared medium: links, latency, loss, partitions and the delivery scheduler.

    Ordering rules: every gossip hop goes through one heap, resolved in (due time, send
    sequence) order; a node forwards to its peers in the order it connected to them; loss,
    jitter and fanout draws come from one generator seeded with `seed`, in that order; connects
    and requests draw from one per node (seeded with `seed` and the peer id). At latency 0
    `publish` runs the whole flood itself, breadth-first, so for a seed and an order of calls
    every run delivers, drops and counts the same. With latency, a scheduler task resolves hops
    when due (on a TICK_S grid): reproducible under a `MockClock` too, unless another task runs
    at the same instant (trio randomises the order of ready tasks). The scheduler runs in one
    up node's nursery at a time; a fair lock hands it on (in opening order) when that node goes
    down. Validators must not raise: a bug would surface in `publish` or in that node.
    """

    def __init__(
        self,
        latency_s: float = 0.0,
        jitter_s: float = 0.0,
        loss: float = 0.0,
        seed: int = 0,
        fanout: int | None = None,
    ) -> None:
        bad_fanout = fanout is not None and fanout < 1
        if latency_s < 0 or jitter_s < 0 or not 0.0 <= loss <= 1.0 or bad_fanout:
            raise ValueError("want latency, jitter >= 0, loss within [0, 1] and fanout >= 1")
        self.latency_s, self.jitter_s, self.loss, self.seed = latency_s, jitter_s, loss, seed
        self.fanout = fanout
        self._rng = random.Random(seed)
        self._nodes: dict[str, MemoryNetwork] = {}  # up nodes
        self.origins: dict[str, str | None] = {}  # each node's network group (open_node)
        self._counts: dict[str, Counter[str]] = {}
        self._groups: dict[str, int] | None = None
        self._heap: list[_Hop] = []
        self._sequence = count()
        self._scheduler_lock = trio.Lock()
        self._wake: trio.CancelScope | None = None
        self._idle = trio.lowlevel.ParkingLot()

    @asynccontextmanager
    async def open_node(self, peer_id: str, origin: str | None = None
                        ) -> AsyncIterator[MemoryNetwork]:
        """A node that is up inside the block; leaving the block takes it down like a crash.
        `origin`: the network group its requests come from (`network_group` of its address
        over libp2p; None: a loopback or private address)."""
        if not peer_id or "/" in peer_id:
            raise ValueError(f"peer id {peer_id!r} must be non-empty and contain no '/'")
        if peer_id in self._nodes:
            raise ValueError(f"{peer_id} is already up")
        node = MemoryNetwork(self, peer_id, self._counts.setdefault(peer_id, Counter()))
        self._nodes[peer_id] = node
        self.origins[peer_id] = origin
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._schedule)
            try:
                yield node
            finally:
                # Down before the scheduler moves on, so nothing more reaches this node.
                self._take_down(node)
                nursery.cancel_scope.cancel()

    def partition(self, groups: list[set[str]]) -> None:
        """Fail deliveries, connects and requests between groups until `heal`; peers named in
        no group form one more group together."""
        placed = {peer: index for index, group in enumerate(groups) for peer in group}
        if len(placed) < sum(len(group) for group in groups):
            raise ValueError("a peer is in two partition groups")
        self._groups = placed

    def heal(self) -> None:
        self._groups = None

    def stats(self) -> HubStats:
        nodes = {peer: NodeStats(**counts) for peer, counts in sorted(self._counts.items())}
        total = sum(self._counts.values(), Counter[str]())
        return HubStats(total=NodeStats(**total), nodes=nodes, in_flight=len(self._heap))

    async def wait_idle(self) -> None:
        """Wait until no gossip hop is in flight (returns at once, after a checkpoint, if none)."""
        await trio.lowlevel.checkpoint()
        while self._heap:
            await self._idle.park()

    def _delay(self, rng: random.Random) -> float:
        return self.latency_s + (rng.random() * self.jitter_s if self.jitter_s else 0.0)

    def _split(self, a: str, b: str) -> bool:
        return self._groups is not None and self._groups.get(a, -1) != self._groups.get(b, -1)

    def _reach(self, sender: MemoryNetwork, peer_id: str) -> MemoryNetwork:
        """The up node `peer_id` if `sender` may talk to it now, else NetworkError."""
        target, me = self._nodes.get(peer_id), sender.peer_id
        if not sender._up:
            raise NetworkError(f"{me} is down")
        if target is None:
            raise NetworkError(f"{peer_id} is not reachable (down or unknown)")
        if self._split(me, peer_id):
            raise NetworkError(f"{peer_id} is partitioned away from {me}")
        if peer_id in sender._blocked or me in target._blocked:
            raise NetworkError(f"{peer_id} and {me} are blocked from each other")
        if target.ignores(me):
            raise NetworkError(f"{peer_id} refuses {me} (graylisted)")
        return target

    def _forward(self, node: MemoryNetwork, came_from: str | None, hop: _Message) -> None:
        """Send `hop` on from `node`, leaving when it arrived, to each connected peer
        subscribed to its topic (or to `fanout` of them)."""
        now, message, mid = hop
        topic, source, scores = message.topic, message.source, node._scores
        targets = [
            peer
            for peer_id, peer in node._links.items()
            if peer_id != came_from
            and peer_id != source
            and topic in peer._subscriptions
            and not (scores and node.ignores(peer_id))
        ]
        if self.fanout is not None and len(targets) > self.fanout:
            targets = self._rng.sample(targets, self.fanout)
        node._counts["sent"] += len(targets)
        rng, heap, sequence, wake = self._rng, self._heap, self._sequence, self._wake
        for peer in targets:
            if self.loss and rng.random() < self.loss:
                peer._counts["dropped"] += 1
                continue
            delay = self._delay(rng)
            due = math.ceil((now + delay) / TICK_S) * TICK_S if delay else now
            heapq.heappush(heap, (due, next(sequence), node, peer, (due, message, mid)))
            if wake is not None and due < wake.deadline:
                wake.deadline = due

    def _arrive(self, sender: MemoryNetwork, node: MemoryNetwork, hop: _Message) -> None:
        now, message, mid = hop
        counts, sender_id = node._counts, sender._peer_id
        subscription = node._subscriptions.get(message.topic)
        if (
            subscription is None
            or not (sender._up and node._up)
            or (self._groups is not None and self._split(sender_id, node._peer_id))
            or (node._blocked and sender_id in node._blocked)
            or (sender._blocked and node._peer_id in sender._blocked)
            or (node._scores and node.ignores(sender_id))
        ):
            counts["dropped"] += 1
            return
        if node._saw(mid, now):
            counts["duplicates"] += 1
            return
        channel, validator = subscription
        if validator is not None and not validator(message.source, message.data):
            counts["rejected"] += 1
            node.adjust_score(sender_id, INVALID_MESSAGE_PENALTY)
            return
        try:
            channel.send_nowait(message)
        except trio.WouldBlock:
            counts["dropped"] += 1  # a slow consumer loses messages; it still forwards them
        except trio.BrokenResourceError:
            del node._subscriptions[message.topic]  # the consumer closed its channel
            counts["dropped"] += 1
            return
        else:
            counts["delivered"] += 1
        self._forward(node, sender_id, hop)

    async def _schedule(self) -> None:
        """Resolve hops as they fall due; one node's task at a time holds the lock."""
        async with self._scheduler_lock:
            while True:
                deadline = self._heap[0][0] if self._heap else math.inf
                try:
                    with trio.CancelScope(deadline=deadline) as self._wake:
                        await trio.sleep_forever()
                finally:
                    self._wake = None
                self._resolve_due()

    def _resolve_due(self) -> None:
        heap = self._heap
        now = trio.current_time()
        while heap and heap[0][0] <= now:
            _, _, sender, node, hop = heapq.heappop(heap)
            self._arrive(sender, node, hop)
        if not heap:
            self._idle.unpark_all()

    def _take_down(self, node: MemoryNetwork) -> None:
        node._up = False
        del self._nodes[node.peer_id]
        for peer in node._links.values():
            peer._links.pop(node.peer_id, None)
        node._links.clear()
        for channel, _ in node._subscriptions.values():
            channel.close()
        node._subscriptions.clear()
        node._event_sender.close()
        for scope in node._serving:
            scope.cancel()
        if not self._nodes:  # nobody is left to run the scheduler: what is in flight is lost
            for _, _, _, receiver, _ in self._heap:
                receiver._counts["dropped"] += 1
            self._heap.clear()
            self._idle.unpark_all()
