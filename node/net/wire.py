"""The bytes peers exchange: gossip envelopes of signed records and the sync protocol's messages.
Their common framing is node/net/frames.py's, the drop reasons node/net/drops.py's."""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from node.net.drops import DROP_REASONS, DropCounter, DropReason, WireError
from node.net.frames import (
    DERIVED_KINDS,
    MAX_FETCH_IDS,
    MAX_MESSAGE_OBJECTS,
    WIRE_VERSION,
    KnownRecords,
    _bin_size,
    _check_keys,
    _decode_records,
    _records_field,
    _records_frame_size,
    _records_message,
    _records_message_size,
    _require_signed,
    _unpack,
    derived_unsigned,
)
from node.net.network import MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES
from research_dag import Record, canonical_encode, encode_record

__all__ = [
    "DERIVED_KINDS",
    "DROP_REASONS",
    "MAX_BATCH_RECORDS",
    "MAX_FETCH_IDS",
    "MAX_MESSAGE_OBJECTS",
    "MAX_SUMMARY_IDS",
    "MAX_SUMMARY_PROBLEMS",
    "WIRE_VERSION",
    "DropCounter",
    "DropReason",
    "KnownRecords",
    "SyncFetch",
    "SyncRecords",
    "SyncRequest",
    "SyncResponse",
    "SyncSummary",
    "SyncSummaryRequest",
    "WireError",
    "decode_batch",
    "decode_or_count",
    "decode_sync_request",
    "decode_sync_response",
    "derived_unsigned",
    "encode_batch",
    "encode_stored_records",
    "encode_summary_page",
    "encode_sync_request",
    "encode_sync_response",
]

MAX_BATCH_RECORDS = 64  # records per gossip envelope
MAX_SUMMARY_IDS = 100_000  # ids per summary (3.2 MB: fits MAX_RESPONSE_BYTES)
MAX_SUMMARY_PROBLEMS = 256  # problem ids a summary request may filter on
ID_BYTES = 32  # a record id travels as its raw sha256 digest
_HEX_ID = re.compile(r"[0-9a-f]{64}")


# ---- gossip envelopes -----------------------------------------------------------------------


def encode_batch(records: Sequence[Record]) -> list[bytes]:
    """Envelopes carrying `records` (duplicates dropped), each of 1..64 records and in size.

    Raises WireError for an unsigned record or one too large for any envelope.
    """
    items: list[bytes] = []
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            continue
        seen.add(record.id)
        _require_signed(record)
        item = encode_record(record)
        if _records_message_size([len(item)]) > MAX_MESSAGE_BYTES:
            raise WireError(
                f"{record.kind} {record.id} encodes to {len(item)} bytes; a gossip envelope"
                f" holds at most {MAX_MESSAGE_BYTES} bytes (peers can still fetch it by sync)",
                "oversize",
            )
        items.append(item)
    envelopes: list[bytes] = []
    batch: list[bytes] = []
    batch_bytes = 0  # the batch's items as bins
    for item in items:
        size = _bin_size(len(item))
        if (
            len(batch) + 1 > MAX_BATCH_RECORDS
            or _records_frame_size(len(batch) + 1, batch_bytes + size) > MAX_MESSAGE_BYTES
        ):
            envelopes.append(_records_message(batch))
            batch, batch_bytes = [], 0
        batch.append(item)
        batch_bytes += size
    if batch:
        envelopes.append(_records_message(batch))
    return envelopes


def decode_batch(data: bytes) -> list[Record]:
    """The records of one gossip envelope: canonical, 1..64 distinct, valid and signed."""
    raw = _unpack(data, MAX_MESSAGE_BYTES, "envelope", {"v", "records"})
    items = _records_field(raw)
    if not 1 <= len(items) <= MAX_BATCH_RECORDS:
        raise WireError(f"an envelope holds 1..{MAX_BATCH_RECORDS} records, not {len(items)}")
    return _decode_records(items)


def decode_or_count(data: bytes, counter: DropCounter) -> list[Record] | None:
    """`decode_batch`, or None after counting why the message was dropped."""
    try:
        return decode_batch(data)
    except WireError as error:
        counter.add(error.reason)
        return None


# ---- sync protocol --------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncSummaryRequest:
    """Ask for the ids a peer holds: of some problems (None: all), above a cursor (paging)."""

    problems: list[str] | None = None
    after: str | None = None

    def __post_init__(self) -> None:
        if self.problems is not None:
            _check_ids(self.problems, "problems", MAX_SUMMARY_PROBLEMS, minimum=1)
        if self.after is not None:
            _check_ids([self.after], "after", 1)


@dataclass(frozen=True)
class SyncFetch:
    """Ask for records by id."""

    ids: list[str]

    def __post_init__(self) -> None:
        _check_ids(self.ids, "ids", MAX_FETCH_IDS, minimum=1)


@dataclass(frozen=True)
class SyncSummary:
    """Record ids a peer holds, ascending; `truncated`: more follow above the last one."""

    ids: list[str]
    truncated: bool = False

    def __post_init__(self) -> None:
        _check_ids(self.ids, "ids", MAX_SUMMARY_IDS)
        if any(a >= b for a, b in itertools.pairwise(self.ids)):
            raise WireError("summary ids must be strictly ascending")

    @classmethod
    def limited(cls, ids: Iterable[str], after: str | None = None) -> SyncSummary:
        """The ids above `after`, ascending, capped at MAX_SUMMARY_IDS (then `truncated`)."""
        ordered = sorted({record_id for record_id in ids if after is None or record_id > after})
        return cls(ordered[:MAX_SUMMARY_IDS], truncated=len(ordered) > MAX_SUMMARY_IDS)


@dataclass(frozen=True)
class SyncRecords:
    """Records answering a fetch: signed, distinct, and within MAX_RESPONSE_BYTES together."""

    records: list[Record]

    def __post_init__(self) -> None:
        if len(self.records) > MAX_FETCH_IDS:
            raise WireError(f"a fetch response holds at most {MAX_FETCH_IDS} records")

    @classmethod
    def limited(cls, records: Iterable[Record]) -> SyncRecords:
        """As many of `records` as fit, in order; unsigned and oversize ones are left out.

        One bad record would make the requester reject the whole response; a record too large
        to fit is skipped, and the requester asks again for whatever is missing.
        """
        kept: list[Record] = []
        items = 0  # the bytes the kept records take as bin items (a running total: linear)
        seen: set[str] = set()
        for record in records:
            if len(kept) == MAX_FETCH_IDS:
                break
            if record.id in seen or not (record.signature or derived_unsigned(record)):
                continue
            item = _bin_size(len(encode_record(record)))
            if _records_frame_size(len(kept) + 1, items + item) <= MAX_RESPONSE_BYTES:
                seen.add(record.id)
                kept.append(record)
                items += item
        return cls(kept)


def encode_stored_records(items: Iterable[tuple[str, bytes]]) -> tuple[bytes, list[str]]:
    """A fetch response made of records' stored bytes, (id, bytes) each, as
    `encode_sync_response(SyncRecords.limited(...))` makes one from records: as many as fit, in
    order, one too large to fit skipped. Returns the message and the ids it holds.

    The bytes go out as they are, neither decoded nor re-encoded: each must be a distinct,
    signed record that was verified when it was stored (RecordStore.encoded_many checks each
    against its id); the requester verifies every record again.
    """
    kept: list[bytes] = []
    ids: list[str] = []
    size = 0  # the bytes the kept items take as bins (a running total: linear)
    for record_id, item in items:
        if len(kept) == MAX_FETCH_IDS:
            break
        bin_size = _bin_size(len(item))
        if _records_frame_size(len(kept) + 1, size + bin_size) <= MAX_RESPONSE_BYTES:
            kept.append(item)
            ids.append(record_id)
            size += bin_size
    return _records_message(kept), ids


SyncRequest: TypeAlias = SyncSummaryRequest | SyncFetch
SyncResponse: TypeAlias = SyncSummary | SyncRecords


def encode_sync_request(request: SyncRequest) -> bytes:
    if isinstance(request, SyncFetch):
        return canonical_encode({"v": WIRE_VERSION, "type": "fetch", "ids": _pack_ids(request.ids)})
    return canonical_encode(
        {
            "v": WIRE_VERSION,
            "type": "summary",
            "problems": None if request.problems is None else _pack_ids(request.problems),
            "after": None if request.after is None else _pack_ids([request.after]),
        }
    )


def decode_sync_request(data: bytes) -> SyncRequest:
    """A summary or fetch request: canonical, within MAX_REQUEST_BYTES, ids ascending."""
    raw = _unpack(data, MAX_REQUEST_BYTES, "sync request", None)
    kind = raw.get("type")
    if kind == "fetch":
        _check_keys(raw, {"v", "type", "ids"}, "fetch request")
        return SyncFetch(_unpack_ids(raw["ids"], "ids"))
    if kind == "summary":
        _check_keys(raw, {"v", "type", "problems", "after"}, "summary request")
        problems = None if raw["problems"] is None else _unpack_ids(raw["problems"], "problems")
        after = None if raw["after"] is None else _unpack_ids(raw["after"], "after")
        if after is not None and len(after) != 1:
            raise WireError("after must be one 32-byte id or nil")
        return SyncSummaryRequest(problems, None if after is None else after[0])
    raise WireError(f"unknown sync request type {kind!r:.40}")


def encode_summary_page(digests: Sequence[bytes], after: str | None) -> bytes:
    """`encode_sync_response(SyncSummary.limited(ids, after))` for ids already held as their
    sorted, distinct raw digests: a binary search and one page, so that a summary costs
    O(page), not a sort of every id a node holds (a request with a fresh `after` cost 70 ms at
    50,000 records, and anyone may send one)."""
    start = 0
    if after is not None:
        _check_ids([after], "after", 1)
        start = bisect.bisect_right(digests, bytes.fromhex(after))
    end = min(len(digests), start + MAX_SUMMARY_IDS)
    return canonical_encode(
        {"v": WIRE_VERSION, "ids": b"".join(digests[start:end]), "truncated": end < len(digests)}
    )


def encode_sync_response(response: SyncResponse) -> bytes:
    if isinstance(response, SyncRecords):
        return _records_message([encode_record(record) for record in response.records])
    return canonical_encode(
        {"v": WIRE_VERSION, "ids": _pack_ids(response.ids), "truncated": response.truncated}
    )


def decode_sync_response(
    data: bytes, requested: Collection[str] | None = None, known: KnownRecords | None = None
) -> SyncResponse:
    """A summary or the records of a fetch, as strict as `decode_batch`.

    Pass the fetched ids as `requested` to refuse records nobody asked for.
    """
    raw = _unpack(data, MAX_RESPONSE_BYTES, "sync response", None)
    if set(raw) == {"v", "ids", "truncated"}:
        if not isinstance(raw["truncated"], bool):
            raise WireError("truncated must be a boolean")
        return SyncSummary(_unpack_ids(raw["ids"], "ids"), raw["truncated"])
    _check_keys(raw, {"v", "records"}, "sync response")
    records = _decode_records(_records_field(raw), known)
    if requested is not None:
        wanted = requested if isinstance(requested, set | frozenset) else set(requested)
        for index, record in enumerate(records):
            if record.id not in wanted:  # a list of 1,024 ids was searched once a record
                raise WireError(f"record {index} ({record.id}) was not requested", "invalid_record")
    return SyncRecords(records)



def _pack_ids(ids: Iterable[str]) -> bytes:
    return b"".join(bytes.fromhex(record_id) for record_id in sorted(set(ids)))


def _unpack_ids(value: Any, name: str) -> list[str]:
    """Concatenated 32-byte ids, strictly ascending (their count is checked by the caller)."""
    if not isinstance(value, bytes) or len(value) % ID_BYTES:
        raise WireError(f"{name} must be bin holding whole {ID_BYTES}-byte ids")
    chunks = [value[start : start + ID_BYTES] for start in range(0, len(value), ID_BYTES)]
    if any(a >= b for a, b in itertools.pairwise(chunks)):
        raise WireError(f"{name} must be strictly ascending")
    return [chunk.hex() for chunk in chunks]


def _check_ids(ids: list[str], name: str, limit: int, minimum: int = 0) -> None:
    if not minimum <= len(ids) <= limit:
        raise WireError(f"{name} holds {len(ids)} ids; {minimum}..{limit} are allowed")
    for value in ids:
        if not isinstance(value, str) or _HEX_ID.fullmatch(value) is None:
            raise WireError(f"{name}: {value!r:.80} is not 64 lowercase hex characters")
