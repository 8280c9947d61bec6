"""How the record store packs a record into a row and reads it back: canonical msgpack,
zlib with preset dictionaries, the file references of version 2 rows, and the integrity checks
that tell a damaged row from one today's rules no longer accept."""

from __future__ import annotations

import hashlib
import zlib
from typing import Any, TypeAlias

import msgpack

from research_dag import (
    MAX_SOURCE,
    Experiment,
    Hypothesis,
    Problem,
    Record,
    RecordError,
    encoded_record_id,
)


def checked_values(row: ReadRow) -> tuple[dict[str, Any], bytes] | None:
    """A read row's plain values and full bytes if they are intact: canonical msgpack whose
    unsigned part hashes to the row's id, of the row's kind; None if not (the slow path then
    names why). Stored bodies are canonical, and msgpack keeps a map's order both ways, so
    packing the unpacked values gives back the canonical bytes without re-sorting in Python."""
    _, record_id, kind, body = row
    if isinstance(body, str):
        return None
    if isinstance(body, bytes):
        try:
            values = msgpack.unpackb(body, raw=False, strict_map_key=True)
        except (ValueError, TypeError, msgpack.UnpackException):
            return None
    else:
        values = body
    if not isinstance(values, dict) or values.get("kind") != kind:
        return None
    try:
        unsigned = pack_canonical({k: v for k, v in values.items() if k != "signature"})
        encoded = pack_canonical(values)
    except (ValueError, TypeError, OverflowError):
        return None
    if isinstance(body, bytes) and encoded != body:
        return None  # not canonical: a peer would refuse these bytes as they are
    if hashlib.sha256(unsigned).hexdigest() != record_id:
        return None
    return values, encoded


def intact(body: bytes, record_id: str) -> bool:
    """Do the bytes still hash to the id they were stored under (then only the rules changed)?"""
    try:
        return encoded_record_id(body) == record_id
    except RecordError:
        return False


# (id, kind, problem, created_ms, body, refs) as stored; (seq, id, kind, full bytes or plain
# values, or why they cannot be re-assembled) as read.
Row: TypeAlias = tuple[str, str, str | None, int, bytes, bytes | None]
ReadRow: TypeAlias = tuple[int, str, str, bytes | dict[str, Any] | str]
MAX_BLOB_BYTES = 4 * MAX_SOURCE  # a strategy file's UTF-8 bytes at most
MAX_BODY_BYTES = 64 * 1024 * 1024  # far above any record without its files
# A preset dictionary for an experiment's body (the record without its files): its field names,
# then its own files (a diff quotes their lines). Fixed forever: stored bodies need it to inflate.
BODY_WORDS = (
    b"authorcreated_msdescriptiondiffhypothesishypothesis_idkindexperimentmutation_kind"
    b"mutatorofflineoutcomeparentproblemsignaturestatusscoreitemsstrategy_fuelevaluator_fuel"
    b"stderr_taildetailsstrategy.pybaselineperturb_constantokcrashTraceback (most recent call"
    b" last):\n"
)


class Damaged(Exception):
    """A stored body or file cannot be re-assembled (the store file was altered or damaged)."""


def files_dictionary(refs: dict[str, bytes], files: dict[bytes, bytes]) -> bytes:
    return (BODY_WORDS + b"".join(files[refs[path]] for path in sorted(refs)))[-32768:]


def pack_canonical(values: Any) -> bytes:
    """msgpack of values already in canonical order (as unpacked from canonical bytes)."""
    packed: bytes = msgpack.packb(values, use_bin_type=True, use_single_float=False)
    return packed


def deflate(data: bytes, dictionary: bytes | None) -> bytes:
    if dictionary:
        packer = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        packer = zlib.compressobj(6)
    return packer.compress(data) + packer.flush()


def inflate(data: bytes, dictionary: bytes | None, limit: int) -> bytes:
    unpacker = zlib.decompressobj(zdict=dictionary) if dictionary else zlib.decompressobj()
    try:
        out = unpacker.decompress(data, limit)
    except zlib.error as error:
        raise Damaged(f"does not inflate: {error}") from None
    if unpacker.unconsumed_tail or not unpacker.eof:
        raise Damaged("inflates to more than its bound, or is cut short")
    return out


def unpack_refs(data: bytes) -> dict[str, bytes]:
    try:
        refs = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException) as error:
        raise Damaged(f"its file list does not decode: {error}") from None
    if not isinstance(refs, dict) or not all(
        isinstance(k, str) and isinstance(v, bytes) and len(v) == 32 for k, v in refs.items()
    ):
        raise Damaged("its file list is not a map of paths to sha256 digests")
    return refs


def problem_of(record: Record) -> str | None:
    if isinstance(record, Problem):
        return record.id
    if isinstance(record, Experiment | Hypothesis):
        return record.problem
    return None
