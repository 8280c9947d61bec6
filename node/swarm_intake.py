"""How a swarm node takes in peers' records: gossip subscriptions and their validator, the
anti-entropy passes, and storing and indexing what arrives (refusing what contradicts the DAG)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from node.catalogue import Catalogue, held_bytes
from node.intake import MAX_AHEAD_MS, refusal
from node.knowledge import DerivedGate
from node.loop import ResearchLoop
from node.net import (
    PROBLEMS_TOPIC,
    DecodedMessages,
    DropCounter,
    GossipMessage,
    Network,
    SyncService,
    problem_topic,
    topic_of,
)
from node.store import RecordStore, StoreError, StoreFull
from node.swarm_config import NodeConfig, NodeStats
from node.trust import Ledger
from research_dag import (
    DERIVED_AUTHOR,
    Experiment,
    Header,
    Problem,
    Record,
    ResearchDag,
    Verification,
)

# Messages taken in per store transaction: what piled up while the previous batch was written.
INTAKE_BATCH = 256
TAKE_STEP = 256  # records an intake checks or adds between checkpoints of the event loop

NOT_YET_IDS = 16_384  # ids of records dated ahead remembered (not fetched again before due)
VOTE_PAGE = 256  # stored votes read at a time when their experiment comes
ORPHAN_VOTES = 65_536  # experiments not held that stored verifications vote on, remembered
FULL_RETRY_S = 60.0  # after a write found the disk full, peers' records wait this long
_log = logging.getLogger(__name__)


class NotYet:
    """Ids of records dated ahead of our clock (drop reason "ahead"), each with its time,
    bounded: sync does not fetch one again before it is due (a peer holding records dated
    ahead had every node that synced with it decode and check them again on every pass)."""

    def __init__(self, now_ms: Callable[[], int], limit: int = NOT_YET_IDS) -> None:
        self.now_ms = now_ms
        self.limit = limit
        self._due: OrderedDict[str, int] = OrderedDict()

    def note(self, record_id: str, created_ms: int) -> None:
        self._due[record_id] = created_ms
        self._due.move_to_end(record_id)
        while len(self._due) > self.limit:
            self._due.popitem(last=False)

    def __contains__(self, record_id: object) -> bool:
        """Dated ahead when last seen, and still not due?"""
        if not isinstance(record_id, str):
            return False
        when = self._due.get(record_id)
        if when is None:
            return False
        if when > self.now_ms() + MAX_AHEAD_MS:
            return True
        del self._due[record_id]
        return False


class NodeIntake:
    """The intake half of `SwarmNode` (node/swarm.py), which sets every attribute below."""

    network: Network
    store: RecordStore
    config: NodeConfig
    dag: ResearchDag
    dropped: set[str]
    ledger: Ledger
    stats: NodeStats
    loops: dict[str, ResearchLoop]
    decoded: DecodedMessages
    sync: SyncService
    refused: DerivedGate
    catalogue: Catalogue
    not_yet: NotYet
    _intakes: int
    now_ms: Callable[[], int]  # the node's clock (a simulation's is the round's)
    room: bool  # False while the disk is at the reserve: peers' records are not stored
    _full_until: float  # time.monotonic() before which a full disk is assumed still full
    _storing: set[str]
    _orphan_votes: OrderedDict[str, None]
    _deriving: trio.Lock
    _nursery: trio.Nursery | None
    _topics: set[str]

    if TYPE_CHECKING:  # node/swarm_claims.py, node/swarm.py

        def _consider_claim(self, experiment: Experiment) -> None: ...

        async def restore_ledger(self) -> None: ...

    @property
    def busy(self) -> bool:
        """Taking in records right now (simulations settle until no node is busy)."""
        return self._intakes > 0 or self.sync.decoding > 0

    async def take(self, records: list[Record]) -> int:
        """Store and index records from a peer (already decoded and signature-checked); those
        that contradict a record we hold are refused, counted and charged to their author."""
        self._intakes += 1
        try:
            return await self._take(records)
        finally:
            self._intakes -= 1

    async def _take(self, records: list[Record]) -> int:
        fresh: dict[str, Record] = {}
        try:
            return await self._take_into(records, fresh)
        finally:  # also when cancelled at a checkpoint: what it did not store, a later one may
            self._storing.difference_update(fresh)

    async def _take_into(self, records: list[Record], fresh: dict[str, Record]) -> int:
        refused: list[Record] = []

        def lookup(record_id: str) -> Record | None:  # what we hold, with this batch's earlier
            return fresh.get(record_id) or self.dag.get(record_id)

        def brief(record_id: str) -> Header | None:  # from memory, never a read
            held = fresh.get(record_id)
            if held is not None:
                problem = held.id if isinstance(held, Problem) else getattr(held, "problem", None)
                return Header(held.id, held.kind, held.created_ms, held.author, problem)
            return self.dag.header(record_id)

        ahead = self.now_ms() + MAX_AHEAD_MS
        pending = (0, 0)  # this batch's problems admitted to the catalogue: (count, bytes)
        for index, record in enumerate(records):
            if index and index % TAKE_STEP == 0:
                await trio.lowlevel.checkpoint()  # a batch holds up to 16,384 records
            if self.ledger.ignored(record.author):
                self.stats.ignored += 1
            elif record.created_ms > ahead:  # a clock past ours: taken once its time comes
                self.stats.drops.add("ahead")
                self.not_yet.note(record.id, record.created_ms)
            elif (record.id not in self.dag and record.id not in fresh
                  and record.id not in self.dropped and record.id not in self._storing):
                # A Pattern, Hypothesis or Verdict not derived here is dropped before any check
                # reads a cited header, whoever signed it: it is never stored nor used, and a
                # signed one citing 801 ids cost 801 index reads on the event loop (9 a message
                # held it 7.4 s for 128 messages). Its publisher pays past its allowance
                # (`_pushed`).
                if not self.refused.admits(record):
                    self.stats.drops.add("underived")  # never stored: node/knowledge.py
                elif isinstance(record, Problem) and not self.catalogue.admits(record, pending):
                    self.stats.drops.add("catalogue")  # past what we hold of others'
                elif refusal(record, lookup, brief) is not None:
                    if self._deriving.locked():  # standing moves only between derivations
                        refused.append(record)
                    else:
                        self._refuse(record)
                else:
                    fresh[record.id] = record
                    self._storing.add(record.id)  # another intake meanwhile skips it
                    if isinstance(record, Problem) and not self.catalogue.exempt(record):
                        pending = (pending[0] + 1, pending[1] + held_bytes(record))
        # durable first
        if fresh and not await trio.to_thread.run_sync(self._store_peers, list(fresh.values())):
            for _ in fresh:
                self.stats.drops.add("disk")  # not remembered as dropped: asked again later
            self._storing.difference_update(fresh)
            fresh.clear()
        if not fresh:
            if refused:
                async with self._deriving:
                    for record in refused:
                        self._refuse(record)
            return 0
        # Stored, so indexed whatever happens now: a cancel between the commit and the DAG
        # (sync's 30 s limit, which a peer can time) left records stored and counted as held
        # but never indexed (a problem never known, each record taken again as 0).
        with trio.CancelScope(shield=True):
            async with self._deriving:  # never while a derivation reads the DAG (or ledger)
                for record in refused:
                    self._refuse(record)
                voted: list[str] = []  # experiments come that stored votes were on
                for index, record in enumerate(fresh.values()):
                    if index and index % TAKE_STEP == 0:
                        await trio.lowlevel.checkpoint()
                    self.dag.add(record)
                    if isinstance(record, Problem):  # counted once stored, not before: a
                        self.catalogue.add(record)  # cancelled intake counted what it lost
                    if isinstance(record, Verification):
                        if record.experiment in self.dag:
                            self.ledger.note(record)
                        else:  # a vote on nothing held: stored, noted if it comes
                            self._orphaned(record.experiment)
                    elif isinstance(record, Experiment):
                        if record.id in self._orphan_votes:
                            del self._orphan_votes[record.id]
                            voted.append(record.id)
                        if record.problem in self.loops:  # the model's data once it vouches
                            self.loops[record.problem].offer_data(record)
                        self._consider_claim(record)
                await self._note_stored_votes(voted)
        self.stats.received += len(fresh)
        return len(fresh)

    def _orphaned(self, experiment_id: str) -> None:
        """Remember (bounded) that stored verifications vote on `experiment_id`, not held:
        every vote was noted in memory (~1 KB each, more than its record takes on disk), so a
        stranger's verifications of experiments nobody holds grew memory past what the disk
        reserve bounds. An id forgotten past the bound has its votes noted at the next start
        if its experiment has come by then."""
        self._orphan_votes[experiment_id] = None
        self._orphan_votes.move_to_end(experiment_id)
        while len(self._orphan_votes) > ORPHAN_VOTES:
            self._orphan_votes.popitem(last=False)

    async def _note_stored_votes(self, experiment_ids: list[str]) -> None:
        """Note every stored vote on experiments that have just come, read a page at a time in
        a worker thread (a red team: 256 votes on each of 128 experiments, read and decoded on
        the event loop, held it 2.4 s), all of them: `Ledger.note` keeps a vouching peer's
        over strangers' (the first 256 read, in storage order, had left it out)."""
        for experiment_id in experiment_ids:
            ids = await trio.to_thread.run_sync(self.dag.linked_ids, experiment_id,
                                                "verified_by")
            for start in range(0, len(ids), VOTE_PAGE):
                votes = await trio.to_thread.run_sync(self.dag.get_many,
                                                      ids[start:start + VOTE_PAGE])
                for vote in votes:
                    if isinstance(vote, Verification):
                        self.ledger.note(vote)

    def _store_peers(self, records: list[Record]) -> bool:
        """Store peers' records (in a worker thread) unless the disk is at the node's reserve
        (`NodeConfig.min_free_bytes`) or full: peers' records are free to make, by identities
        free to make, and a disk they fill would stop the node's own writes. False: none was
        stored (a transaction rolls back whole); the node keeps researching, and sync asks for
        them again once there is room."""
        room = self.has_room()
        if room:
            try:
                self.store.add_many(records, keep_free=self.config.min_free_bytes)
            except StoreFull:  # into the reserve, or a limit statfs does not show (a quota)
                self._full_until = time.monotonic() + FULL_RETRY_S
                self._noted_room(False)
                return False
        return room

    def has_room(self) -> bool:
        """Whether the disk holding the store is above the node's reserve (a statfs call), no
        write found it full in the last FULL_RETRY_S, and the ballast is held (or due to be
        allocated again: the peers' next write tries)."""
        ballast = self.store.ballast
        try:
            room = (self.store.free_bytes() >= self.config.min_free_bytes
                    and time.monotonic() >= self._full_until
                    and (ballast is None or ballast.ready()))
        except StoreError:  # cannot tell: the write itself will say
            room = True
        self._noted_room(room)
        return room

    def _noted_room(self, room: bool) -> None:
        if room != self.room:
            self.room = room
            if room:
                _log.warning("the data directory has room again: peers' records are stored")
            elif self.store.ballast is not None and not self.store.ballast.held:
                _log.warning("the data directory's disk is full and this node's ballast is"
                             " released for its own records: peers' records are not stored"
                             " until it can be held again (free disk space, or `swarm gc`)")
            else:
                _log.warning(
                    "the data directory's disk is at this node's reserve (%d MiB free, %d MiB"
                    " kept for its own records): peers' records are not stored until there is"
                    " room (free disk space, or `swarm gc`)",
                    self._free_mib(), self.config.min_free_bytes // 2**20)

    def _free_mib(self) -> int:
        try:
            return self.store.free_bytes() // 2**20
        except StoreError:
            return -1

    def _refuse(self, record: Record) -> None:
        """A signed record that contradicts what we hold: its author signed it, so the author
        pays (the relay may not have known; a record that fails alone is dropped earlier, at
        decode, and the gossip layer penalises whoever forwarded it). A derived record has no
        author to charge (its fake is stored at most, never used: node/knowledge.py)."""
        self.stats.refused += 1
        self.stats.drops.add("inconsistent")
        if record.author == DERIVED_AUTHOR:
            return
        penalty = self.config.trust.mismatch_penalty
        self.ledger.penalise(record.author, penalty)
        self.network.adjust_score(record.author, -self.config.trust.score_penalty)

    # ----- gossip and sync -------------------------------------------------------------------

    def sync_scope(self) -> list[str] | None:
        """Problems whose history we pull (None: everything; we also want problem records)."""
        return None

    def _validate(self, topic: str, source: str, data: bytes) -> bool:
        """The gossip validator: cheap checks only (size, schema, signatures, the topic);
        never replays. What it decoded stays in `decoded` for intake (decoding is most of a
        relay's CPU)."""
        if self.ledger.ignored(source):
            return False
        records = self.decoded.envelope(data, self.stats.drops)
        if records is None:
            return False
        # Each on its topic (docs/protocol.md section 3, Topics); a Verification or Verdict whose
        # experiment or hypothesis we do not hold cannot be placed (None): it passes.
        if any(topic_of(record, self.dag) not in (None, topic) for record in records):
            self.stats.drops.add("topic")  # an experiment on the problems topic was accepted
            return False
        return True

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscriptions and anti-entropy, until cancelled. Ready once subscribed; first the
        ledger is restored from the stored verifications (in a worker thread)."""
        await self.restore_ledger()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._subscribe(PROBLEMS_TOPIC)
            for problem_id in sorted(self.loops):
                await self._subscribe(problem_topic(problem_id))
            nursery.start_soon(self._sync_on_connect)
            task_status.started()

    async def _subscribe(self, topic: str) -> None:
        if topic in self._topics or self._nursery is None:
            return
        self._topics.add(topic)
        channel = await self.network.subscribe(
            topic, validator=lambda source, data: self._validate(topic, source, data)
        )
        self._nursery.start_soon(self._drain, channel)

    async def _drain(self, channel: trio.MemoryReceiveChannel[GossipMessage]) -> None:
        """Take in gossip; what arrived while the last batch was being stored goes into one
        batch, so a burst costs one store transaction (one worker-thread hop), not one each.
        The batch's envelopes are decoded again in a worker thread: the validator decoded each,
        but `decoded` remembers only the newest NODE_MESSAGES, so most of a full batch is
        decoded and signature-checked anew (256 envelopes held the event loop 2.5-5 s)."""
        async with channel:
            async for message in channel:
                batch = [message]
                for _ in range(INTAKE_BATCH - 1):
                    try:
                        batch.append(channel.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                self._intakes += 1  # busy while decoding, too (a simulation settles on it)
                try:
                    decoded = await trio.to_thread.run_sync(self._decode_all, batch)
                    records: list[Record] = []
                    for one, found in zip(batch, decoded, strict=True):
                        records += self._pushed(one, found)
                    if records:
                        await self.take(records)
                finally:
                    self._intakes -= 1

    def _decode_all(self, batch: list[GossipMessage]) -> list[list[Record]]:
        """Each message's records (in a worker thread; `decoded` is thread-safe). The
        validator passed each message, so none is invalid: its drop reason is not counted
        twice."""
        return [self.decoded.envelope(message.data, DropCounter()) or [] for message in batch]

    def _pushed(self, message: GossipMessage, records: list[Record]) -> list[Record]:
        """A gossip message's records this node takes in: a Pattern, Hypothesis or Verdict it
        does not derive (whoever signed it) is dropped here (`underived`), and its publisher,
        past its allowance of those since our last curation, loses gossip score
        (docs/security.md)."""
        kept = [record for record in records
                if record.id in self.dag or self.refused.admits(record)]
        if len(kept) < len(records):
            for _ in range(len(records) - len(kept)):
                self.stats.drops.add("underived")
            if self.refused.over_allowance(message.source, len(records) - len(kept)):
                self.network.adjust_score(message.source, -self.config.trust.score_penalty)
        return kept

    async def _sync_on_connect(self) -> None:
        async with self.network.peer_events() as events:
            async for peer in events:
                await self.sync.sync_with(peer)

    async def sync_with_peers(self) -> int:
        """One anti-entropy pass with every connected peer (run periodically)."""
        taken = 0
        for peer in sorted(self.network.connected_peers()):
            taken += await self.sync.sync_with(peer)
        return taken
