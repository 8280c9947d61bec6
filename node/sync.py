"""Anti-entropy: peers exchange summaries of the record ids they hold and send what the other
lacks, on connect and periodically, so late joiners get the full history and lost gossip is
repaired."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import trio

from node.network import SYNC_PROTOCOL, Network, NetworkError
from node.wire import (
    MAX_FETCH_IDS,
    SyncFetch,
    SyncRecords,
    SyncSummary,
    SyncSummaryRequest,
    WireError,
    decode_sync_request,
    decode_sync_response,
    encode_sync_request,
    encode_sync_response,
)
from research_dag import Record

SYNC_TIMEOUT_S = 30.0


class SyncService:
    """Serves this node's records to peers and pulls what it is missing from them."""

    def __init__(self, network: Network, node: SyncedNode) -> None:
        self.network = network
        self.node = node
        self.rounds = 0
        self.fetched = 0
        self.failures = 0
        self._served: set[str] = set()
        network.handle_requests(SYNC_PROTOCOL, self.handle)

    async def handle(self, peer: str, data: bytes) -> bytes:
        request = decode_sync_request(data)  # WireError -> the network layer resets the stream
        if isinstance(request, SyncSummaryRequest):
            ids = self.node.record_ids(request.problems)
            return encode_sync_response(SyncSummary.limited(ids, after=request.after))
        assert isinstance(request, SyncFetch)
        response = SyncRecords.limited(self.node.records_by_id(request.ids))
        self._served.update(record.id for record in response.records)
        return encode_sync_response(response)

    def served(self, record_id: str) -> bool:
        """Has a peer fetched this record from us (e.g. the problem we just posed)?"""
        return record_id in self._served

    async def sync_with(self, peer: str) -> int:
        """Pull every record `peer` holds that we lack (for our problems, plus all problem
        records). Returns how many records were taken in; never raises for a bad peer."""
        try:
            with trio.fail_after(SYNC_TIMEOUT_S):
                return await self._pull(peer)
        except (NetworkError, WireError, trio.TooSlowError):
            self.failures += 1
            return 0

    async def _pull(self, peer: str) -> int:
        missing: list[str] = []
        after: str | None = None
        while True:  # page through the peer's summary
            request = SyncSummaryRequest(problems=self.node.sync_scope(), after=after)
            summary = decode_sync_response(
                await self.network.request(peer, SYNC_PROTOCOL, encode_sync_request(request))
            )
            if not isinstance(summary, SyncSummary):
                raise WireError("expected a summary")
            missing += [i for i in summary.ids if not self.node.has_record(i)]
            if not summary.truncated or not summary.ids:
                break
            after = summary.ids[-1]
        taken = 0
        while missing:
            chunk, missing = missing[:MAX_FETCH_IDS], missing[MAX_FETCH_IDS:]
            response = decode_sync_response(
                await self.network.request(
                    peer, SYNC_PROTOCOL, encode_sync_request(SyncFetch(ids=chunk))
                ),
                requested=chunk,
            )
            if not isinstance(response, SyncRecords):
                raise WireError("expected records")
            if not response.records:
                break  # the peer cannot send these (too large, or gone): stop, don't spin
            taken += await self.node.take(_parents_first(response.records))
            got = {record.id for record in response.records}
            # A responder stops at the size limit: ask again for the rest of the chunk.
            missing = [i for i in chunk if i not in got] + missing
        self.rounds += 1
        self.fetched += taken
        return taken


def _parents_first(records: Iterable[Record]) -> list[Record]:
    """Problems, then experiments, then the rest: the DAG is order-free, but replays and
    adoption are decided as records arrive and need the problem first."""
    order = {"problem": 0, "experiment": 1, "verification": 2, "hypothesis": 3}
    return sorted(records, key=lambda r: (order.get(r.kind, 4), r.created_ms, r.id))


class SyncedNode(Protocol):
    """What the sync service needs from a node (SwarmNode implements it)."""

    def sync_scope(self) -> list[str] | None: ...

    def record_ids(self, problems: list[str] | None) -> set[str]: ...

    def records_by_id(self, ids: list[str]) -> list[Record]: ...

    def has_record(self, record_id: str) -> bool: ...

    async def take(self, records: list[Record]) -> int: ...
