"""Decoded wire messages remembered by their bytes, so that one decode serves every node of a
process (and a node's gossip validator and intake) that meets the same message."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from node.net.wire import (
    DropCounter,
    DropReason,
    SyncRecords,
    SyncSummary,
    WireError,
    decode_batch,
    decode_sync_response,
)
from research_dag import Record

NODE_MESSAGES = 64  # a lone node: covers the validator -> intake handoff of one burst
NODE_BYTES = 8 * 1024 * 1024
SHARED_MESSAGES = 8192  # a simulation: a few rounds' worth of everyone's publishes
SHARED_BYTES = 256 * 1024 * 1024
RECORDS = 16_384  # records of sync responses (each peer's response differs, its records not)

T = TypeVar("T")


class DecodedMessages:
    """A bounded memo of `decode_batch` (the records of an envelope, or why it was dropped), of
    sync summaries and of the records in sync responses.

    Sound because decoding is a pure function of the bytes: canonical form, schema and each
    record's Ed25519 signature against the key inlined in its author's peer id; no node state
    enters it. So equal bytes decode to equal, already verified records, whichever node asks,
    and records are frozen, so nodes can share the very objects (less memory too). In a
    simulation all nodes share one memo: N nodes in one process would otherwise decode and
    verify every envelope N times (~0.3 ms a record: most of a round's CPU at 100 nodes), and
    N nodes holding the same history send each other the same summary bytes.
    """

    def __init__(self, max_messages: int = NODE_MESSAGES, max_bytes: int = NODE_BYTES) -> None:
        self._envelopes: _Recent[tuple[Record, ...] | DropReason] = _Recent(
            max_messages, max_bytes
        )
        self._summaries: _Recent[SyncSummary] = _Recent(max_messages, max_bytes)
        self._records: _Recent[Record] = _Recent(RECORDS, max_bytes)

    @property
    def hits(self) -> int:
        return self._envelopes.hits + self._summaries.hits + self._records.hits

    @property
    def misses(self) -> int:
        return self._envelopes.misses + self._summaries.misses + self._records.misses

    def envelope(self, data: bytes, drops: DropCounter) -> list[Record] | None:
        """A gossip envelope's records, or None after counting in `drops` why it is invalid."""
        found = self._envelopes.recall(data)
        if found is None:
            try:
                found = tuple(decode_batch(data))
            except WireError as error:
                found = error.reason
            self._envelopes.keep(data, found)
        if isinstance(found, str):
            drops.add(found)
            return None
        return list(found)

    def sync_summary(self, data: bytes) -> SyncSummary:
        """A sync summary response; WireError (not remembered) for anything else."""
        found = self._summaries.recall(data)
        if found is None:
            decoded = decode_sync_response(data)
            if not isinstance(decoded, SyncSummary):
                raise WireError("expected a summary")
            found = decoded
            self._summaries.keep(data, found)
        return found

    def sync_records(self, data: bytes, requested: list[str]) -> SyncRecords:
        """The records answering a fetch of `requested`; WireError for anything else."""
        decoded = decode_sync_response(data, requested=requested, known=self._records)
        if not isinstance(decoded, SyncRecords):
            raise WireError("expected records")
        return decoded


class _Recent(Generic[T]):
    """The most recently used values by their message bytes, within a count and a byte size.
    Thread-safe: sync responses are decoded in worker threads, beside the event loop's own
    gossip decoding."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._kept: OrderedDict[bytes, T] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def recall(self, data: bytes) -> T | None:
        with self._lock:
            found = self._kept.get(data)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
                self._kept.move_to_end(data)
            return found

    def keep(self, data: bytes, value: T) -> None:
        with self._lock:
            if len(data) > self.max_bytes or data in self._kept:
                return
            self._kept[data] = value
            self._bytes += len(data)
            while len(self._kept) > self.max_messages or self._bytes > self.max_bytes:
                oldest, _ = self._kept.popitem(last=False)
                self._bytes -= len(oldest)
