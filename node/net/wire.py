"""The bytes peers exchange: gossip envelopes of signed records and the sync protocol's messages."""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

import msgpack

from node.identity import verify_record
from node.net.network import MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES
from research_dag import (
    DERIVED_AUTHOR,
    MAX_NESTING,
    Record,
    RecordError,
    canonical_encode,
    decode_record,
    encode_record,
    msgpack_excess,
    record_encodings,
)

WIRE_VERSION = 1
MAX_BATCH_RECORDS = 64  # records per gossip envelope
MAX_FETCH_IDS = 1024  # ids per fetch request (32 KiB of ids: fits MAX_REQUEST_BYTES)
MAX_SUMMARY_IDS = 100_000  # ids per summary (3.2 MB: fits MAX_RESPONSE_BYTES)
MAX_SUMMARY_PROBLEMS = 256  # problem ids a summary request may filter on
ID_BYTES = 32  # a record id travels as its raw sha256 digest
# More msgpack objects than any message holds (a fetch response: a map of 2, its keys and
# values, MAX_FETCH_IDS records as bin): the nesting scan stops there (research_dag).
MAX_MESSAGE_OBJECTS = 2 * MAX_FETCH_IDS
_HEX_ID = re.compile(r"[0-9a-f]{64}")
# The kinds a node derives from the records they cite (docs/protocol.md, "Derived records"):
# valid unsigned with author DERIVED_AUTHOR, since no node uses one it did not derive itself.
DERIVED_KINDS = frozenset({"pattern", "hypothesis", "verdict"})

# "inconsistent": a valid, signed record that contradicts one the node holds (node/intake.py);
# "topic": a valid envelope holding a record that does not belong on the topic it came on;
# "underived": a peer's Pattern, Hypothesis or Verdict this node does not derive (not stored).
DropReason: TypeAlias = Literal[
    "oversize", "malformed", "version", "signature", "invalid_record", "inconsistent", "topic",
    "underived",
]
DROP_REASONS: tuple[DropReason, ...] = (
    "oversize", "malformed", "version", "invalid_record", "signature", "topic", "inconsistent",
    "underived",
)


class WireError(Exception):
    """Bytes that are not a valid message; `reason` classifies it for drop counts."""

    def __init__(self, message: str, reason: DropReason = "malformed") -> None:
        super().__init__(message)
        self.reason: DropReason = reason


@dataclass(frozen=True)
class DropCounter:
    """How many incoming messages were dropped, by reason (one counter per caller or peer)."""

    counts: Counter[DropReason] = field(default_factory=Counter)

    def add(self, reason: DropReason) -> None:
        self.counts[reason] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_reason(self) -> dict[str, int]:
        """Every reason in protocol order, zeros included (what `swarm status` shows)."""
        return {reason: self.counts[reason] for reason in DROP_REASONS}


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


class KnownRecords(Protocol):
    """Records already decoded and verified, by their exact encoded bytes (node/net/decoded.py):
    decoding is a pure function of the bytes, so equal bytes need no second check."""

    def recall(self, item: bytes) -> Record | None: ...

    def keep(self, item: bytes, record: Record) -> None: ...


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


# ---- internals ------------------------------------------------------------------------------


def _unpack(data: bytes, limit: int, what: str, keys: set[str] | None) -> dict[str, Any]:
    """A canonical msgpack map of this wire version, within `limit` bytes."""
    if not isinstance(data, bytes):
        raise WireError(f"{what} must be bytes, not {type(data).__name__}")
    if len(data) > limit:
        raise WireError(f"{what} of {len(data)} bytes exceeds the limit of {limit}", "oversize")
    # Before anything builds or walks the value: ~500 levels made canonical_encode overflow
    # the stack from a 507-byte sync reply (issue 8, finding 11). Messages nest 2 deep.
    excess = msgpack_excess(data, max_objects=MAX_MESSAGE_OBJECTS)
    if excess == "deep":
        raise WireError(f"{what} nests arrays and maps more than {MAX_NESTING} deep")
    if excess == "many":
        raise WireError(f"{what} holds more than {MAX_MESSAGE_OBJECTS} msgpack objects")
    try:
        raw = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_str_len=64,  # only keys and the request type are strings
            max_bin_len=limit,
            max_array_len=MAX_FETCH_IDS,
            max_map_len=16,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise WireError(f"{what} is not msgpack within limits: {error}") from None
    if not isinstance(raw, dict):
        raise WireError(f"{what} must be a msgpack map, not {type(raw).__name__}")
    version = raw.get("v")
    if type(version) is not int:  # not isinstance: True == 1 in Python
        raise WireError(f"{what} lacks an integer version 'v'")
    if version != WIRE_VERSION:
        raise WireError(f"unsupported version {version}", "version")
    try:
        canonical = canonical_encode(raw)
    except (RecordError, OverflowError) as error:  # non-string keys, out-of-range ints
        raise WireError(f"{what} is not canonically encodable: {error}") from None
    if canonical != data:
        raise WireError(f"{what} is not canonically encoded (see docs/protocol.md)")
    if keys is not None:
        _check_keys(raw, keys, what)
    return raw


def _check_keys(raw: dict[str, Any], keys: set[str], what: str) -> None:
    if set(raw) != keys:
        raise WireError(f"{what} must have exactly the keys {sorted(keys)}, not {sorted(raw)}")


def _records_field(raw: dict[str, Any]) -> list[bytes]:
    items = raw["records"]
    if not isinstance(items, list) or not all(isinstance(item, bytes) for item in items):
        raise WireError("records must be an array of bin (encoded records)")
    return items


def _decode_records(items: list[bytes], known: KnownRecords | None = None) -> list[Record]:
    records: list[Record] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        record = None if known is None else known.recall(item)
        if record is None:
            record = _decode_item(index, item)
            if known is not None:
                known.keep(item, record)
        if record.id in seen:
            raise WireError(
                f"record {index} repeats record {seen[record.id]} ({record.id})", "invalid_record"
            )
        seen[record.id] = index
        records.append(record)
    return records


def _decode_item(index: int, item: bytes) -> Record:
    """One record: valid, canonically encoded and signed by its author.

    One canonical encoding serves every check: the bytes compared with those received, the
    unsigned part's bytes the signature covers, and the id (cached on the record with the
    bytes). The comparison is with the validated record's encoding, not the msgpack of what
    arrived, so a value the schema would read differently (an integer score it takes as a
    float, an omitted field it fills with its default) is refused as before.
    """
    try:
        record = decode_record(item)
    except RecordError as error:
        raise WireError(f"record {index}: {error}", "invalid_record") from None
    encoded, unsigned = record_encodings(record)
    if encoded != item:
        raise WireError(
            f"record {index} ({record.kind}) is not canonically encoded", "invalid_record"
        )
    if not (derived_unsigned(record) or verify_record(record, unsigned)):
        raise WireError(f"record {index} ({record.id}): {_signature_problem(record)}", "signature")
    return record


def derived_unsigned(record: Record) -> bool:
    """Is `record` a derived record, valid without a signature? Only a Pattern, Hypothesis or
    Verdict whose author is DERIVED_AUTHOR and whose signature is empty; any other record must
    be signed by its author (docs/protocol.md, "Derived records")."""
    return (record.kind in DERIVED_KINDS and record.author == DERIVED_AUTHOR
            and not record.signature)


def _require_signed(record: Record) -> None:
    """Sending side: every record a node sends was signed by it or verified when it arrived,
    and the receiver verifies again, so checking the signature is present is enough here
    (a full Ed25519 check costs ~175 us a record, on every publish and sync response)."""
    if not (record.signature or derived_unsigned(record)):
        raise WireError(f"{record.kind} {record.id}: {_signature_problem(record)}", "signature")


def _signature_problem(record: Record) -> str:
    if not record.signature:
        return f"unsigned (author {record.author!r:.80})"
    return f"signature does not verify for author {record.author!r:.80}"


def _records_message(items: list[bytes]) -> bytes:
    return canonical_encode({"v": WIRE_VERSION, "records": items})


def _records_message_size(sizes: list[int]) -> int:
    """Exact length of `_records_message` for items of these sizes, without encoding them."""
    return _records_frame_size(len(sizes), sum(_bin_size(size) for size in sizes))


def _records_frame_size(count: int, items: int) -> int:
    """Exact length of `_records_message` for `count` items taking `items` bytes as bins."""
    # fixmap(2) "records" array... "v" 1: 1 + 8 + array header + items + 2 + 1
    return 12 + _header_size(count, 16) + items


def _header_size(count: int, fix_limit: int) -> int:
    if count < fix_limit:
        return 1
    return 3 if count < 1 << 16 else 5


def _bin_size(size: int) -> int:
    if size < 1 << 8:
        return 2 + size
    return (3 if size < 1 << 16 else 5) + size


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
