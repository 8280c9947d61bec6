"""How a swarm node takes in peers' records: gossip subscriptions and their validator, the
anti-entropy passes, and storing and indexing what arrives (refusing what contradicts the DAG)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from node.intake import refusal
from node.knowledge import DerivedGate
from node.loop import ResearchLoop
from node.net import (
    PROBLEMS_TOPIC,
    DecodedMessages,
    GossipMessage,
    Network,
    SyncService,
    problem_topic,
    topic_of,
)
from node.store import RecordStore
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
    _intakes: int
    _storing: set[str]
    _deriving: trio.Lock
    _nursery: trio.Nursery | None
    _topics: set[str]

    if TYPE_CHECKING:  # node/swarm_claims.py

        def _consider_claim(self, experiment: Experiment) -> None: ...

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
        refused: list[Record] = []

        def lookup(record_id: str) -> Record | None:  # what we hold, with this batch's earlier
            return fresh.get(record_id) or self.dag.get(record_id)

        def brief(record_id: str) -> Header | None:  # from memory, never a read
            held = fresh.get(record_id)
            if held is not None:
                problem = held.id if isinstance(held, Problem) else getattr(held, "problem", None)
                return Header(held.id, held.kind, held.created_ms, held.author, problem)
            return self.dag.header(record_id)

        for record in records:
            if self.ledger.ignored(record.author):
                self.stats.ignored += 1
            elif (record.id not in self.dag and record.id not in fresh
                  and record.id not in self.dropped and record.id not in self._storing):
                # A derived record not derived here is dropped before any check reads a cited
                # header; a signed one is checked first, so that its author pays for a lie.
                if record.author == DERIVED_AUTHOR and not self.refused.admits(record):
                    self.stats.drops.add("underived")  # never stored: node/knowledge.py
                elif refusal(record, lookup, brief) is not None:
                    if self._deriving.locked():  # standing moves only between derivations
                        refused.append(record)
                    else:
                        self._refuse(record)
                elif not self.refused.admits(record):
                    self.stats.drops.add("underived")
                else:
                    fresh[record.id] = record
        if not fresh:
            if refused:
                async with self._deriving:
                    for record in refused:
                        self._refuse(record)
            return 0
        self._storing.update(fresh)
        try:  # durable first
            await trio.to_thread.run_sync(self.store.add_many, list(fresh.values()))
            async with self._deriving:  # never while a derivation reads the DAG (or ledger)
                for record in refused:
                    self._refuse(record)
                for record in fresh.values():
                    self.dag.add(record)
                    if isinstance(record, Verification):
                        self.ledger.note(record)
                    elif isinstance(record, Experiment):
                        if record.problem in self.loops:  # the model's data once it vouches
                            self.loops[record.problem].offer_data(record)
                        self._consider_claim(record)
        finally:
            self._storing.difference_update(fresh)
        self.stats.received += len(fresh)
        return len(fresh)

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
        self.ledger.standing[record.author] = self.ledger.standing_of(record.author) - penalty
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
        """Subscriptions and anti-entropy, until cancelled. Ready once subscribed."""
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
        batch, so a burst costs one store transaction (one worker-thread hop), not one each."""
        async with channel:
            async for message in channel:
                records = self._pushed(message)
                for _ in range(INTAKE_BATCH - 1):
                    try:
                        more = channel.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    records += self._pushed(more)
                if records:
                    await self.take(records)

    def _pushed(self, message: GossipMessage) -> list[Record]:
        """A gossip message's records this node takes in: a derived record it does not derive
        is dropped here (`underived`), and its publisher, past its allowance of those since our
        last curation, loses gossip score (docs/security.md)."""
        records = self.decoded.envelope(message.data, self.stats.drops) or []
        kept = [record for record in records if record.author != DERIVED_AUTHOR
                or record.id in self.dag or self.refused.admits(record)]
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
