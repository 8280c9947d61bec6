"""What this node serves each peer over request/response streams, and when: one serve at a time
per peer, a token bucket on the bytes each peer is sent, a short queue per peer and one for the
node, a bounded table of peers, and the counts an operator reads (node/net/sync.py uses it).

A request over its peer's budget waits its turn (pacing, invisible to a polite peer); only one
that finds its peer's queue, or the node's, full is refused (the handler raises `ServeRefused`,
which the network layer turns into a reset stream, as for a request it cannot parse). The
numbers, and the measurements behind them, are `ServeLimits`' and docs/security.md's."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, NoReturn, TypeAlias

import trio

MIB = 1024 * 1024

# What happened to a request, for `swarm status`-style counters (a request may count as
# `queued` and `paced` and then `served`; each refusal counts once under its reason):
# served     answered;
# queued     waited for a serving slot (its peer's own earlier request, or the node's total);
# paced      waited for its peer's byte budget to refill;
# refused    its peer already had `waiting_per_peer` requests waiting;
# busy       the node's queue was full of other peers' requests, none with more waiting;
# displaced  it was waiting when a peer with fewer requests waiting took its place;
# expired    it waited `max_wait_s` without its turn;
# throttled  waited for the node's byte budget, which all peers share.
ServeEvent: TypeAlias = Literal[
    "served", "queued", "paced", "refused", "busy", "displaced", "expired", "throttled"
]
SERVE_EVENTS: tuple[ServeEvent, ...] = (
    "served", "queued", "paced", "refused", "busy", "displaced", "expired", "throttled"
)


class ServeRefused(Exception):
    """A request this node will not serve now; the peer may ask again later."""

    def __init__(self, peer: str, reason: ServeEvent) -> None:
        super().__init__(f"{peer}: not served ({reason})")
        self.reason: ServeEvent = reason


@dataclass(frozen=True)
class ServeLimits:
    """How much one node serves, per peer and in all (docs/protocol.md section 7). The
    defaults, measured on this project's 2-core machine with records shaped like the loop's
    (3.2 KB each on the wire; bench/event_loop/sync_flood.py):

    - `bytes_per_s` 4 MiB: about one full fetch reply a second. A reply of 1,024 such records
      (3.1 MiB) costs a worker thread 0.09 s of CPU (read back from the store, re-hashed), so
      a peer held to this rate costs ~12 % of one core; unpaced, one peer keeping 8 fetches
      open was served 24-31 MiB/s, about a core. A late joiner's pass is paced to
      (history - burst) / rate: 20,000 records (61 MiB) in >= 11.3 s, measured 11.6-13.8 s
      against 10.4-11.7 s unpaced (its own checks, ~0.45 s per 1,024 records, are nearly as
      slow); one 30 s pass brings up to 16 + 4 x 30 = 136 MiB (~44,000 records) from one peer,
      and the next pass (30 s later in `swarm join`) the rest.
    - `burst_bytes` 16 MiB: ~5,000 records served without waiting, so a young swarm's
      history, or a node back from a few minutes away, is never paced.
    - `serving_per_peer` 1: a polite requester (ours, the JS peer of docs/protocol.md) waits
      for each answer; a second request of its (two passes overlapping) waits its turn.
    - `waiting_per_peer` 4: at most ~4 s of its own pacing queued behind the one served, well
      under `max_wait_s`; a 6th request at once is refused.
    - `serving` 2: requests answered at once (each in a worker thread), whatever the number
      of peers: the cores. Unbounded, a flooder's streams could take all 40 threads of trio's
      shared pool, which the node's intake and checks use too; now answers run in 2 threads
      of their own (node/net/sync.py), and a cancelled answer keeps its slot until its thread
      ends (abandoned, its thread went on building 4 MiB beside the next ones).
    - `waiting` 64: requests waiting over all peers (each holds its <= 64 KiB request: 4 MiB
      at most); a peer with fewer waiting displaces the newest of the peer with the most, so
      a peer that waits for each answer always gets a place.
    - `peers` 1,024: peers whose budget is remembered (~1.6 KB each, measured); the least
      recently asking idle one is forgotten to make room (at most `waiting + serving` are
      busy).
    - `max_wait_s` 10: a request is refused rather than held longer (both sides bound an
      exchange at 30 s; the JS peer waits 10 s for an answer).
    - `node_bytes_per_s` 12 MiB and `node_burst_bytes` 48 MiB: what all peers together are
      sent. Per-peer budgets alone let k fresh identities (free to make) take k times a
      peer's rate, up to what the 2 serving threads can build (a flooder was served up to
      31 MiB/s, nearly a core of this machine); the node's bucket holds every peer's
      serving to ~0.35 of a core (0.09 s a 3.1 MiB reply) whatever the number of identities,
      leaving the node's own research the rest. Three peers at their full rate fit in it, so
      a late joiner is paced only by its own budget unless more than two others pull at
      once; under a flood of k identities each waiting peer gets its turn in arrival order
      (at most one request per peer waits for it), ~1/(k + 1) of it.
    """

    bytes_per_s: float = 4 * MIB
    burst_bytes: int = 16 * MIB
    serving_per_peer: int = 1
    waiting_per_peer: int = 4
    serving: int = 2
    waiting: int = 64
    peers: int = 1024
    max_wait_s: float = 10.0
    node_bytes_per_s: float = 12 * MIB
    node_burst_bytes: int = 48 * MIB

    def __post_init__(self) -> None:
        counts = (self.serving_per_peer, self.waiting_per_peer, self.serving, self.waiting)
        rates = (self.bytes_per_s, self.node_bytes_per_s)
        if min(rates) <= 0 or min(self.burst_bytes, self.node_burst_bytes) < 0:
            raise ValueError("want byte rates > 0 and bursts >= 0")
        if self.max_wait_s <= 0:
            raise ValueError("want max_wait_s > 0")
        if min(counts) < 1 or self.serving_per_peer > self.serving:
            raise ValueError("want every count >= 1 and serving_per_peer <= serving")
        if self.peers <= self.waiting + self.serving:
            raise ValueError("want peers > waiting + serving: an idle peer must be evictable")


@dataclass(frozen=True)
class PeerLoad:
    """One tracked peer as the budget sees it now."""

    serving: int
    waiting: int
    tokens: float  # bytes it may still be sent before its next request waits (< 0: in debt)
    sent: int  # bytes served to it since it was last forgotten
    paced: int
    refused: int  # refused, busy, displaced or expired


class _Waiter:
    __slots__ = ("displaced", "scope")

    def __init__(self, scope: trio.CancelScope) -> None:
        self.scope = scope
        self.displaced = False


class _Bucket:
    """Bytes that may be sent before a request waits: `burst` at most, refilled at `rate` a
    second, in debt (< 0) after an answer larger than what was left."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst, self.rate = float(burst), rate
        self.tokens = self.burst
        self.updated = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def charge(self, size: int) -> None:
        self.refill(trio.current_time())
        self.tokens -= size

    async def out_of_debt(self) -> bool:
        """Until the bucket is out of debt; whether that took a wait. Less than a byte of debt
        is none (else float rounding could ask for a wait of no time, forever)."""
        waited = False
        while True:
            now = trio.current_time()
            self.refill(now)
            if self.tokens > -1.0:
                return waited
            waited = True
            await trio.sleep_until(now + -self.tokens / self.rate)


class _Peer:
    __slots__ = ("bytes", "paced", "peer", "refused", "sent", "serving", "slots", "waiters")

    def __init__(self, peer: str, limits: ServeLimits, now: float) -> None:
        self.peer = peer
        self.slots = trio.Semaphore(limits.serving_per_peer)  # FIFO: its requests in order
        self.waiters: deque[_Waiter] = deque()
        self.serving = 0
        self.bytes = _Bucket(limits.burst_bytes, limits.bytes_per_s, now)
        self.sent = self.paced = self.refused = 0

    @property
    def idle(self) -> bool:
        return self.serving == 0 and not self.waiters


class ServeBudget:
    """Admits, paces and counts the requests this node serves. Sync functions never wait; the
    one coroutine, `serve`, waits for the request's turn, then runs what answers it."""

    def __init__(self, limits: ServeLimits | None = None) -> None:
        self.limits = ServeLimits() if limits is None else limits
        self.counts: Counter[ServeEvent] = Counter()
        self.serving = 0  # requests being answered now, all peers
        self.waiting = 0  # requests admitted and waiting for their turn, all peers
        self._peers: dict[str, _Peer] = {}  # least recently asking first
        self._queued: dict[str, _Peer] = {}  # peers with requests waiting
        self._slots = trio.Semaphore(self.limits.serving)  # FIFO across peers
        self._node: _Bucket | None = None  # every peer's bytes (made in trio: it reads time)
        self._node_turn = trio.Lock()  # fair: waits for the node's bytes in arrival order
        self.sent = 0  # bytes served to all peers

    @property
    def tracked(self) -> int:
        """Peers whose state is kept (at most `limits.peers`)."""
        return len(self._peers)

    def load(self, peer: str) -> PeerLoad | None:
        state = self._peers.get(peer)
        if state is None:
            return None
        return PeerLoad(state.serving, len(state.waiters), state.bytes.tokens, state.sent,
                        state.paced, state.refused)

    def loads(self) -> dict[str, PeerLoad]:
        """Every tracked peer's load (for a view or a test; at most `limits.peers`)."""
        return {peer: load for peer in self._peers if (load := self.load(peer)) is not None}

    def by_reason(self) -> dict[str, int]:
        """Every event in a fixed order, zeros included (as `DropCounter.by_reason`)."""
        return {event: self.counts[event] for event in SERVE_EVENTS}

    async def serve(self, peer: str, answer: Callable[[], Awaitable[bytes]],
                    unanswered_cost: int = 0) -> bytes:
        """`answer()` once it is `peer`'s turn, its length charged to `peer`'s budget (or
        `unanswered_cost` if it raises or is cancelled: a request that cannot be parsed costs
        its sender its own size). ServeRefused if the request is not admitted or does not get
        its turn in time."""
        limits = self.limits
        state = self._admit(peer)
        waiter = _Waiter(trio.CancelScope(deadline=trio.current_time() + limits.max_wait_s))
        state.waiters.append(waiter)
        self._queued[peer] = state
        self.waiting += 1
        if self._node is None:
            self._node = _Bucket(limits.node_burst_bytes, limits.node_bytes_per_s,
                                 trio.current_time())
        node = self._node
        queued = paced = throttled = turn = False
        try:
            with waiter.scope:
                queued = await _acquire(state.slots)
                try:
                    paced = await state.bytes.out_of_debt()
                    # One request per peer at most waits here (it holds its peer's slot), so
                    # under a flood of identities each gets its turn at the node's bytes. The
                    # node's bucket is read holding a serving slot: an answer is charged
                    # before its slot is released, so at most `serving` answers are built
                    # past the bucket's last look (without the slot, every peer's waiting
                    # request passed an empty bucket before the answers ahead were charged).
                    async with self._node_turn:
                        queued = await _acquire(self._slots) or queued
                        try:
                            throttled = await node.out_of_debt()
                        except BaseException:
                            self._slots.release()
                            raise
                except BaseException:
                    state.slots.release()
                    raise
                turn = True  # no checkpoint from here to the end of the scope
        finally:
            if not waiter.displaced:  # a displaced waiter was taken off the queue already
                self._unqueue(state, waiter)
        if not turn:  # the scope caught its own cancel
            self._refuse(state, "displaced" if waiter.displaced else "expired")
        if queued:
            self.counts["queued"] += 1
        if paced:
            self.counts["paced"] += 1
            state.paced += 1
        if throttled:
            self.counts["throttled"] += 1
        state.serving += 1
        self.serving += 1
        response: bytes | None = None
        try:
            response = await answer()
            self.counts["served"] += 1
            return response
        finally:
            cost = unanswered_cost if response is None else len(response)
            state.bytes.charge(cost)
            node.charge(cost)
            state.sent += 0 if response is None else len(response)
            self.sent += 0 if response is None else len(response)
            state.serving -= 1
            self.serving -= 1
            self._slots.release()
            state.slots.release()

    def _admit(self, peer: str) -> _Peer:
        """`peer`'s state, most recently used, with room for one more waiting request (made
        by displacing another peer's if the node's queue is full); else ServeRefused."""
        limits = self.limits
        state = self._peers.pop(peer, None)
        if state is None:
            if len(self._peers) >= limits.peers:
                self._forget_one()
            state = _Peer(peer, limits, trio.current_time())
        self._peers[peer] = state
        if len(state.waiters) >= limits.waiting_per_peer:
            self._refuse(state, "refused")
        if self.waiting >= limits.waiting:
            fattest = max(self._queued.values(), key=lambda p: len(p.waiters))
            if len(fattest.waiters) <= len(state.waiters):
                self._refuse(state, "busy")
            # Its newest request: the older ones have waited longer and hold its place.
            displaced = fattest.waiters[-1]
            self._unqueue(fattest, displaced)
            displaced.displaced = True
            displaced.scope.cancel()
        return state

    def _forget_one(self) -> None:
        """Drop the least recently asking idle peer (its debt, if any, is forgiven: only a
        node asked by more than `limits.peers` peers forgets one still paying)."""
        for peer, state in self._peers.items():
            if state.idle:
                del self._peers[peer]
                return
        raise AssertionError("no idle peer: limits.peers must exceed waiting + serving")

    def _unqueue(self, state: _Peer, waiter: _Waiter) -> None:
        state.waiters.remove(waiter)
        self.waiting -= 1
        if not state.waiters:
            del self._queued[state.peer]

    def _refuse(self, state: _Peer, reason: ServeEvent) -> NoReturn:
        self.counts[reason] += 1
        state.refused += 1
        raise ServeRefused(state.peer, reason)


async def _acquire(slots: trio.Semaphore) -> bool:
    """Take a slot; whether that took a wait. `acquire_nowait` cannot jump the queue: trio's
    `release` hands a slot to the first waiter rather than freeing it."""
    try:
        slots.acquire_nowait()
    except trio.WouldBlock:
        await slots.acquire()
        return True
    return False
