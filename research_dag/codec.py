"""How a record becomes bytes and back: the tagged union of every kind, its one encoding (canonical
msgpack, research_dag/canonical.py) and the strict decoder peers' bytes go through."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, TypeAlias

import msgpack
from pydantic import Field, TypeAdapter, ValidationError

from research_dag.canonical import (
    MAX_NESTING,
    RecordError,
    canonical_encode,
    canonical_values,
    msgpack_excess,
    nests_deeper,
    pack_canonical,
)
from research_dag.derived import Hypothesis, Pattern, Verdict
from research_dag.record_base import MAX_PACKAGE_BYTES, MAX_RECORD_OBJECTS
from research_dag.records import Experiment, Problem, Verification
from research_dag.transcripts import Transcript

Record: TypeAlias = Annotated[
    Problem | Experiment | Verification | Pattern | Hypothesis | Verdict | Transcript,
    Field(discriminator="kind"),
]
RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)


def encode_record(record: Record) -> bytes:
    """Full wire/storage bytes of a record, signature included.

    Cached per instance like the id (records are frozen): a node encodes the same record to
    check it arrived canonical, to store it, to gossip it and to serve it by sync, and encoding
    walks the whole record in Python (~85 us for a small experiment).
    """
    cached = record.__dict__.get("_encoded_cache")
    if cached is None:
        cached, _ = record_encodings(record)
    return bytes(cached)


def record_encodings(record: Record) -> tuple[bytes, bytes]:
    """A record's full canonical bytes (`encode_record`) and its unsigned part's (what its id
    hashes and its signature covers: `canonical_bytes`), both from one canonical walk of its
    values; the full bytes and the id are cached on the record.

    Decoding a peer's record needs all three (the bytes to compare with those received, the
    signed bytes, the id): made one at a time, they walked the record three times.
    """
    values = canonical_values(record.plain())
    encoded = pack_canonical(values)
    del values["signature"]
    unsigned = pack_canonical(values)
    object.__setattr__(record, "_encoded_cache", encoded)
    object.__setattr__(record, "_id_cache", hashlib.sha256(unsigned).hexdigest())
    return encoded, unsigned


def decode_record(data: bytes) -> Record:
    """Strictly decode bytes made by `encode_record`; raises RecordError on anything else."""
    return _validated(_unpack_map(data))


def encoded_record_id(data: bytes) -> str:
    """The id that encoded record bytes claim to have (the hash of their canonical form without
    the signature), whether or not they pass today's schema; RecordError if they are not a
    canonical msgpack map. Tells a record written under older rules from a damaged one."""
    raw = _unpack_map(data)
    raw.pop("signature", None)
    return hashlib.sha256(canonical_encode(raw)).hexdigest()


def _unpack_map(data: bytes) -> dict[str, Any]:
    if not isinstance(data, bytes):
        raise RecordError(f"a record is bytes, not {type(data).__name__}")
    if len(data) <= MAX_RECORD_OBJECTS:
        # Too few bytes to hold too many objects (each takes one at least), and msgpack's C
        # decoder builds nesting iteratively (1,024 deep at most), so a small record is built
        # first and its nesting measured on the value: the byte scan below walked every object
        # in Python, ~15 us for a typical experiment. Whatever fails here takes the scan, for
        # the same error as ever.
        try:
            raw = msgpack.unpackb(
                data, raw=False, strict_map_key=True, max_bin_len=MAX_PACKAGE_BYTES
            )
        except (ValueError, msgpack.UnpackException, TypeError):
            raw = None
        if isinstance(raw, dict) and not nests_deeper(raw):
            return raw
    excess = msgpack_excess(data, max_objects=MAX_RECORD_OBJECTS)  # before anything is built
    if excess == "deep":
        raise RecordError(f"arrays and maps nest more than {MAX_NESTING} deep")
    if excess == "many":
        raise RecordError(f"more than {MAX_RECORD_OBJECTS} msgpack objects (no record has so many)")
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=MAX_PACKAGE_BYTES)
    except (ValueError, msgpack.UnpackException, TypeError) as error:
        raise RecordError(f"not a msgpack record: {error}") from None
    if not isinstance(raw, dict):
        raise RecordError("a record must be a map")
    return raw


def validate_record(raw: dict[str, Any]) -> Record:
    """A record from plain values (as msgpack decodes them); RecordError for anything else."""
    if not isinstance(raw, dict):
        raise RecordError(f"a record is a map, not {type(raw).__name__}")
    if nests_deeper(raw):
        raise RecordError(f"arrays and maps nest more than {MAX_NESTING} deep")
    return _validated(raw)


def _validated(raw: dict[str, Any]) -> Record:
    try:
        return RECORD_ADAPTER.validate_python(raw)
    except ValidationError as error:
        raise RecordError(_describe(error)) from None


def _describe(error: Any) -> str:
    first = error.errors()[0]
    where = ".".join(_shown(part) for part in first.get("loc", ())) or "record"
    more = error.error_count() - 1
    suffix = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
    return f"{where}: {first.get('msg', 'invalid')}{suffix}"


def _shown(part: object) -> str:
    """A location part for a message: a map key is whatever the sender wrote (a strategy key of
    ESC, BEL and bidi characters reached the terminal through the store's log line), so any
    key but plain printable ASCII is shown as its escaped repr, and long ones are cut."""
    text = str(part)
    if text.isascii() and text.isprintable() and len(text) <= 80:
        return text
    return f"{text!r:.80}"
