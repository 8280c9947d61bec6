"""The framing every wire message shares: a strict canonical msgpack map of this wire version, an
array of encoded records (each canonical and signed, or derived), and its exact encoded size."""

from __future__ import annotations

from typing import Any, Protocol

import msgpack

from node.identity import verify_record
from node.net.drops import WireError
from research_dag import (
    DERIVED_AUTHOR,
    MAX_NESTING,
    Record,
    RecordError,
    canonical_encode,
    decode_record,
    msgpack_excess,
    record_encodings,
)

WIRE_VERSION = 1
MAX_FETCH_IDS = 1024  # ids per fetch request (32 KiB of ids: fits MAX_REQUEST_BYTES)
# More msgpack objects than any message holds (a fetch response: a map of 2, its keys and
# values, MAX_FETCH_IDS records as bin): the nesting scan stops there (research_dag).
MAX_MESSAGE_OBJECTS = 2 * MAX_FETCH_IDS
# The kinds a node derives from the records they cite (docs/protocol.md, "Derived records"):
# valid unsigned with author DERIVED_AUTHOR, since no node uses one it did not derive itself.
DERIVED_KINDS = frozenset({"pattern", "hypothesis", "verdict"})


class KnownRecords(Protocol):
    """Records already decoded and verified, by their exact encoded bytes (node/net/decoded.py):
    decoding is a pure function of the bytes, so equal bytes need no second check."""

    def recall(self, item: bytes) -> Record | None: ...

    def keep(self, item: bytes, record: Record) -> None: ...


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

