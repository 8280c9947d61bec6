"""Anti-entropy: peers exchange summaries of the record ids they hold and send what the other
lacks, on connect and periodically, so late joiners get the full history and lost gossip is
repaired."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar, TypeVarTuple

import trio

from node.net.decoded import DecodedMessages
from node.net.network import (
    MAX_RESPONSE_BYTES,
    REQUEST_ORIGIN,
    SYNC_PROTOCOL,
    Network,
    NetworkError,
)
from node.net.serve_budget import ServeBudget, ServeLimits
from node.net.wire import (
    MAX_FETCH_IDS,
    MAX_SUMMARY_IDS,
    DropCounter,
    SyncFetch,
    SyncSummaryRequest,
    WireError,
    decode_sync_request,
    encode_stored_records,
    encode_summary_page,
    encode_sync_request,
)
from research_dag import Experiment, Record, ResearchDag

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
SYNC_TIMEOUT_S = 30.0
# Fed to the peer's score per malformed or invalid sync response, as GossipSub scores an
# invalid message (node.net.memory.INVALID_MESSAGE_PENALTY): a handful cut the peer off.
INVALID_RESPONSE_PENALTY = -20.0


class SyncService:
    """Serves this node's records to peers and pulls what it is missing from them."""

    def __init__(
        self,
        network: Network,
        node: SyncedNode,
        decoded: DecodedMessages | None = None,
        drops: DropCounter | None = None,
        limits: ServeLimits | None = None,
    ) -> None:
        self.network = network
        self.node = node
        self.decoded = DecodedMessages() if decoded is None else decoded
        self.drops = DropCounter() if drops is None else drops  # responses refused, by reason
        # What each peer is served, and when (docs/protocol.md section 7, node/net/
        # serve_budget.py); its `by_reason()` counts what was paced and refused.
        self.budget = ServeBudget(limits)
        self._answering = trio.CapacityLimiter(self.budget.limits.serving)
        self.rounds = 0
        self.fetched = 0
        self.failures = 0
        self.decoding = 0  # responses being decoded in worker threads right now
        # Ids someone waits to see fetched (`watch`; `swarm pose` its problem) and those of
        # them a peer fetched: not every id served (a late joiner fetching the whole history
        # made that set grow with it, 145 B a record).
        self._watched: set[str] = set()
        self._served: set[str] = set()
        network.handle_requests(SYNC_PROTOCOL, self.handle)

    async def handle(self, peer: str, data: bytes) -> bytes:
        """The answer to one request of `peer`, in its turn (`budget`): ServeRefused if it is
        over the budget's queues, WireError if it is no request (it costs the peer its size);
        either way the network layer resets the stream. Decoded in its turn, in the worker
        thread that answers it: a refused request is never decoded (33 KB of ids, checked
        one by one), and the event loop decodes none."""
        # Budgeted by the requester's network group where it has a public address: peer ids
        # are free, so k identities from one machine share one peer's budget and one turn at
        # the node's bytes (node/net/serve_budget.py); by its id otherwise.
        key = REQUEST_ORIGIN.get() or peer
        return await self.budget.serve(
            key, functools.partial(self._in_thread, self._answer, data, serving=True),
            len(data))

    def _answer(self, data: bytes) -> bytes:
        """In a worker thread: a summary page of up to 100,000 ids read from the store's index
        on ids (~0.1 s), or up to 1,024 records read back from the store and re-hashed
        (~0.1 s); counted in `decoding` meanwhile, and the event loop keeps answering
        pings."""
        request = decode_sync_request(data)
        if isinstance(request, SyncSummaryRequest):
            return self._summary(request)
        assert isinstance(request, SyncFetch)
        return self._records_for(request.ids)

    def _records_for(self, ids: list[str]) -> bytes:
        """A fetch's answer: the records' bytes as stored, read in one pass and sent without
        decoding or re-encoding them, nor keeping them (a late joiner fetching all history must
        not flush the node's working set). Only ids the DAG holds: every record in it was
        verified when it was taken in and is in the store (stored first), and records the
        store holds but today's rules refuse (`RecordStore.outdated`) never entered it."""
        held = self.node.dag.held(ids)
        message, sent = encode_stored_records(self.node.store.encoded_many(
            [record_id for record_id in ids if record_id in held], MAX_RESPONSE_BYTES))
        if self._watched:
            self._served.update(record_id for record_id in sent if record_id in self._watched)
        return message

    def _summary(self, request: SyncSummaryRequest) -> bytes:
        """One page of the ids a summary lists, read from the DAG's index each time (nothing
        is kept per record: a node's memory must not grow with its history). One more id than
        a page holds is read, to tell whether the page is the last."""
        dag = self.node.dag
        if request.problems is None:  # what every node asks for: a range of the index on ids
            page = dag.page(request.after, MAX_SUMMARY_IDS + 1)
        else:
            ids = sorted(record_ids(dag, request.problems))
            start = 0 if request.after is None else bisect.bisect_right(ids, request.after)
            page = ids[start : start + MAX_SUMMARY_IDS + 1]
        return encode_summary_page([bytes.fromhex(record_id) for record_id in page], None)

    def watch(self, record_id: str) -> None:
        """Note when a peer fetches this record (`served`)."""
        self._watched.add(record_id)

    def served(self, record_id: str) -> bool:
        """Has a peer fetched this watched record from us (e.g. the problem we just posed)?"""
        return record_id in self._served

    async def sync_with(self, peer: str) -> int:
        """Pull every record `peer` holds that we lack (for our problems, plus all problem
        records). Returns how many records were taken in; never raises for a bad peer: a
        response that is not a valid message is counted in `drops` by its reason and lowers
        the peer's score (issue 8, finding 11: a deep reply once stopped the node here). A
        pass cut short (30 s, a failed exchange) still counts what it took before."""
        progress = _Pass()
        try:
            with trio.fail_after(SYNC_TIMEOUT_S):
                await self._pull(peer, progress)
        except WireError as error:
            self.failures += 1
            self.drops.add(error.reason)
            self.network.adjust_score(peer, INVALID_RESPONSE_PENALTY)
        except (NetworkError, trio.TooSlowError):
            self.failures += 1
        self.fetched += progress.taken
        return progress.taken

    async def _pull(self, peer: str, progress: _Pass) -> None:
        """Page through the peer's summary, fetching each page's missing records before asking
        for the next page: a peer listing endless pages of ids it never sends once made us
        gather every page first (100,000 ids a page, gigabytes within the time limit); now a
        page it cannot deliver ends the pass."""
        after: str | None = None
        while True:
            request = SyncSummaryRequest(problems=self.node.sync_scope(), after=after)
            answer = await self.network.request(peer, SYNC_PROTOCOL, encode_sync_request(request))
            summary = await self._in_thread(self.decoded.sync_summary, answer)
            if after is not None and summary.ids and summary.ids[0] <= after:
                # The same page again (or an earlier one): paging would never end.
                raise WireError(f"a summary page after {after} starts at {summary.ids[0]}")
            held = await self._in_thread(self.node.dag.held, summary.ids)
            node = self.node
            dropped, refused, declined, not_yet = (node.dropped, node.refused, node.catalogue,
                                                   node.not_yet)
            delivered = await self._fetch(peer, [
                i for i in summary.ids if i not in held and i not in dropped
                and i not in refused and i not in declined and i not in not_yet
            ], progress)
            if not delivered or not summary.truncated or not summary.ids or not self.node.room:
                break
            after = summary.ids[-1]
        self.rounds += 1

    async def _in_thread(self, decode: Callable[[*Ts], T], *args: *Ts,
                         serving: bool = False) -> T:
        """`decode(*args)` in a worker thread; `decoding` counts those under way, so a
        simulation waiting for quiet (node.sim.settle) waits for them too.

        `serving`: an answer to a peer, in one of the budget's `serving` threads of its own and
        never abandoned: a peer cancelling its requests 3 ms in left each answer's thread
        running after its slot was freed (up to trio's whole shared pool of 40, which intake
        and the store use too). A cancel waits for the answer, ~0.1 s. What we decode for
        ourselves is abandoned on cancel (the pass is over)."""
        self.decoding += 1
        try:
            if serving:
                return await trio.to_thread.run_sync(decode, *args, limiter=self._answering)
            return await trio.to_thread.run_sync(decode, *args, abandon_on_cancel=True)
        finally:
            self.decoding -= 1

    async def _fetch(self, peer: str, missing: list[str], progress: _Pass) -> bool:
        """Take in the records `missing` names from `peer` (counted in `progress`); whether it
        sent every one (False: it stopped sending, too large or gone, and we stop asking)."""
        if missing and not self.node.has_room():  # what we cannot store, we do not ask for
            return True
        while missing:
            chunk, missing = missing[:MAX_FETCH_IDS], missing[MAX_FETCH_IDS:]
            answer = await self.network.request(
                peer, SYNC_PROTOCOL, encode_sync_request(SyncFetch(ids=chunk))
            )
            # Checking 1,024 records (schema, canonical form, Ed25519) takes ~0.45 s: in a
            # worker thread, so that the event loop answers pings meanwhile (js-libp2p drops
            # a peer whose ping echo takes 5 s; issue 10, item 4).
            response = await self._in_thread(self.decoded.sync_records, answer, chunk)
            if not response.records:
                return False  # don't spin on what the peer cannot send
            self.node.dag.prefetch(response.records)  # one query for intake's checks
            progress.taken += await self.node.take(_parents_first(response.records))
            if not self.node.room:  # the disk reached the reserve: ask for no more
                return True
            got = {record.id for record in response.records}
            # A responder stops at the size limit: ask again for the rest of the chunk.
            missing = [i for i in chunk if i not in got] + missing
        return True


@dataclass
class _Pass:
    """What one sync pass took in so far (kept when the pass is cut short)."""

    taken: int = 0


def _parents_first(records: Iterable[Record]) -> list[Record]:
    """Problems, then experiments, then the rest, each after the records it cites: the DAG is
    order-free, but replays and adoption are decided as records arrive and need the problem
    first, and intake checks a record against those it cites only when they are held. Within
    a kind by time, then each experiment after its parent and transcript in the batch: by
    time alone, a parent its author dated late came after its children, whose check against
    it (the same problem) was then skipped."""
    order = {"problem": 0, "transcript": 1, "experiment": 1, "verification": 2, "pattern": 3,
             "hypothesis": 4, "verdict": 5}
    timed = sorted(records, key=lambda r: (order.get(r.kind, 4), r.created_ms, r.id))
    batch = {record.id: record for record in timed}
    placed: set[str] = set()
    ordered: list[Record] = []
    for record in timed:
        pending = [record]  # the record, then what it cites in the batch, unplaced (no recursion)
        stacked = {record.id}
        while pending:
            top = pending[-1]
            cited = [c for c in _cites_first(top)
                     if c in batch and c not in placed and c not in stacked]
            if cited:
                pending.extend(batch[c] for c in cited)
                stacked.update(cited)
                continue
            pending.pop()
            if top.id not in placed:
                placed.add(top.id)
                ordered.append(top)
    return ordered


def _cites_first(record: Record) -> tuple[str, ...]:
    """The records an experiment cites that intake checks it against."""
    if isinstance(record, Experiment):
        return tuple(c for c in (record.parent, record.transcript) if c is not None)
    return ()


def record_ids(dag: ResearchDag, problems: list[str] | None) -> set[str]:
    """What a summary lists: every record, or those of `problems` plus all problem records.

    Found along the DAG's edges (a problem's experiments, their verifications, its hypotheses),
    so a filter costs what it lists, not a pass over every record.
    """
    if problems is None:
        return dag.ids()
    ids = {p.id for p in dag.problems()}
    wanted = set(problems)  # ids only: no record is loaded from the store
    experiments = dag.held(target for _, target, _ in dag.edges_from(wanted, "has_experiment"))
    ids |= experiments
    ids |= dag.held(target for _, target, _ in dag.edges_from(experiments, "verified_by"))
    for problem_id in wanted:
        ids.update(dag.hypothesis_ids_for(problem_id))
    return ids


class StoredRecords(Protocol):
    """Where a node keeps its records' bytes (node.store.RecordStore implements it)."""

    def encoded_many(self, record_ids: Iterable[str], max_bytes: int | None = None
                     ) -> list[tuple[str, bytes]]:
        """The stored, signed records among `record_ids` as (id, bytes), each checked against
        its id, in the order they were stored; it stops reading once `max_bytes` were read."""
        ...


class SyncedNode(Protocol):
    """What the sync service needs from a node (SwarmNode implements it)."""

    @property
    def dag(self) -> ResearchDag:
        """The records this node holds (they only grow)."""
        ...

    @property
    def store(self) -> StoredRecords:
        """Where every record of `dag` is kept (fetches are answered from it)."""
        ...

    @property
    def dropped(self) -> set[str]:
        """Ids deleted by `swarm gc`: not fetched again."""
        ...

    @property
    def refused(self) -> Container[str]:
        """Ids of records refused at intake that no answer changes (node/knowledge.py,
        DerivedGate): not fetched again."""
        ...

    @property
    def catalogue(self) -> Container[str]:
        """Ids of strangers' problems declined at intake: the node holds all of others' it
        takes (node/catalogue.py); not fetched again."""
        ...

    @property
    def not_yet(self) -> Container[str]:
        """Ids of records dated ahead of our clock, until they are due: not fetched."""
        ...

    @property
    def room(self) -> bool:
        """Whether the last store of peers' records found room (node/swarm_intake.py)."""
        ...

    def has_room(self) -> bool:
        """Whether the disk has room for peers' records now (a statfs call)."""
        ...

    def sync_scope(self) -> list[str] | None: ...

    async def take(self, records: list[Record]) -> int: ...
