"""How the record store packs a record into a row's body and reads it back: canonical msgpack,
zlib with preset dictionaries, the fields a row keeps in columns instead, and the integrity
checks that tell a damaged row from one today's rules no longer accept."""

from __future__ import annotations

import difflib
import hashlib
import zlib
from typing import Any, TypeAlias

import msgpack

from node.store_schema import RECOVERY, StoreCorrupt
from research_dag import (
    MAX_SOURCE,
    Record,
    RecordError,
    canonical_encode,
    decode_record,
    encoded_record_id,
    validate_record,
)

# (seq, id, kind, full bytes or plain values, or why they cannot be re-assembled) as read.
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
# A body's first byte says how the rest holds the record.
RAW = 0  # its full canonical bytes
DEFLATED = 1  # its full canonical bytes, deflated
# An experiment without the fields its row keeps in columns (`COLUMNS`: kind, author, time,
# problem and parent; its files are `refs` to the blobs table), deflated; plus these flags:
STRIPPED = 2
REBUILT_DIFF = 1  # its diff left out: `rebuilt_diff(parent's files, its files)` gives it back
OK_SCORE = 2  # its outcome's score left out: an ok outcome's score is the row's score column
PROBLEM_WORDS = 4  # deflated with its problem's dictionary (else BODY_WORDS and its own files)
LAYOUTS = range(STRIPPED, STRIPPED + 8)
COLUMNS = ("author", "created_ms", "kind", "parent", "problem", "strategy")


class Damaged(Exception):
    """A stored body or file cannot be re-assembled (the store file was altered or damaged)."""


def whole_body(encoded: bytes) -> bytes:
    """A body holding a record's full bytes: deflated when that is smaller."""
    packed = deflate(encoded, None)
    if len(packed) < len(encoded):
        return bytes([DEFLATED]) + packed
    return bytes([RAW]) + encoded


def stripped_rest(values: dict[str, Any], rebuilt_diff: bool) -> tuple[dict[str, Any], int]:
    """An experiment's plain values (in canonical order) without what its row and its parent
    give back, and the flags saying what was left out; KeyError when one of COLUMNS is not
    among them (then its full bytes are stored)."""
    for key in COLUMNS:
        if key not in values:
            raise KeyError(key)
    rest = {key: value for key, value in values.items() if key not in COLUMNS}
    flags = 0
    if rebuilt_diff:
        del rest["diff"]
        flags |= REBUILT_DIFF
    outcome = rest.get("outcome")
    score = None if not isinstance(outcome, dict) else outcome.get("score")
    # Not 0.0: SQLite keeps a REAL without a fraction as an integer, and -0.0 would come back
    # as 0.0 (another record).
    if isinstance(outcome, dict) and outcome.get("status") == "ok" and isinstance(score, float) \
            and score != 0.0:
        rest["outcome"] = {key: value for key, value in outcome.items() if key != "score"}
        flags |= OK_SCORE
    return rest, flags


def stripped_body(rest: dict[str, Any], flags: int, dictionary: bytes) -> bytes:
    return bytes([STRIPPED + flags]) + deflate(pack_canonical(rest), dictionary)


def restored(body: bytes, columns: dict[str, Any], score: float | None, dictionary: bytes
             ) -> dict[str, Any]:
    """The plain values of a stripped body with what was left out put back (`columns`, the
    diff among them when it was rebuilt, and the ok score), in canonical order."""
    flags = body[0] - STRIPPED
    values = msgpack.unpackb(inflate(body[1:], dictionary, MAX_BODY_BYTES), raw=False)
    if not isinstance(values, dict) or any(key in values for key in columns):
        raise Damaged("its stored body is not an experiment without its columns")
    if flags & OK_SCORE:
        outcome = values.get("outcome")
        if not isinstance(outcome, dict) or "score" in outcome or score is None:
            raise Damaged("its stored body is not an ok outcome without its score")
        outcome["score"] = score
        values["outcome"] = {key: outcome[key] for key in sorted(outcome)}
    values.update(columns)
    return {key: values[key] for key in sorted(values)}


def rebuilt_diff(old: dict[str, str], new: dict[str, str]) -> str:
    """The unified diff between two file sets as node/mutators/patch.py `make_diff` wrote it
    when this was written (sorted paths, `a/` and `b/` prefixes). Fixed forever: stored bodies
    without their diff need exactly this text back (a change to the mutators' diff only means
    their new diffs are stored whole)."""
    parts: list[str] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path, ""), new.get(path, "")
        if before != after:
            hunks = difflib.unified_diff(_lines(before), _lines(after), f"a/{path}", f"b/{path}")
            parts.extend(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                         for line in hunks)
    return "".join(parts)


def _lines(text: str) -> list[str]:
    parts = text.split("\n")  # not splitlines: it splits on form feeds too
    lines = [part + "\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def full_bytes(body: bytes) -> bytes:
    """The record bytes of a RAW or DEFLATED body."""
    if body[:1] == bytes([RAW]):
        return body[1:]
    if body[:1] == bytes([DEFLATED]):
        return inflate(body[1:], None, MAX_BODY_BYTES)
    raise Damaged(f"its body has an unknown layout ({body[:1].hex() or 'empty'})")


def files_dictionary(files: list[bytes]) -> bytes:
    """BODY_WORDS and an experiment's files in the order of their paths, at most 32 KiB."""
    return (BODY_WORDS + b"".join(files))[-32768:]


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


def pack_numbers(numbers: list[int]) -> bytes:
    """Row numbers (of blobs) as a msgpack array: 2-4 bytes each."""
    return pack_canonical(numbers)


def unpack_numbers(data: bytes, count: int) -> list[int]:
    try:
        numbers = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException) as error:
        raise Damaged(f"its file list does not decode: {error}") from None
    if not isinstance(numbers, list) or len(numbers) != count or not all(
            isinstance(n, int) and n > 0 for n in numbers):
        raise Damaged("its file list is not one stored file per path")
    return numbers


def verified(row: ReadRow, path: object) -> Record | str:
    """The row's record, or why today's schema no longer takes it (outdated: intact, written
    under older rules); StoreCorrupt if it was altered or damaged."""
    seq, record_id, kind, body = row
    checked = checked_values(row)
    if checked is not None:
        # The values hash to the id they were stored under: intact. Today's schema must
        # still read them back as exactly these values, else the record is outdated.
        values, encoded = checked
        try:
            record = validate_record(values)
        except RecordError as error:
            return str(error)
        if record.plain() == values:
            # Its id and bytes are those just hashed: cached as `record.id` and
            # `encode_record` would have computed them (a canonical re-encoding in Python,
            # most of a read's cost), as a decoded record caches them.
            object.__setattr__(record, "_id_cache", record_id)
            object.__setattr__(record, "_encoded_cache", encoded)
            return record
        return f"it now hashes to {record.id}"
    if isinstance(body, dict):
        try:
            record = validate_record(body)
            if record.id == record_id and record.kind == kind:
                return record
            body = canonical_encode(body)  # the checks below name what is wrong
        except RecordError:
            try:
                body = canonical_encode(body)
            except RecordError as error:
                body = f"{type(error).__name__}: {error}"
    if isinstance(body, str):
        raise StoreCorrupt(f"record store {path}: record {record_id} (seq {seq}) does not decode"
                           f" ({body}); {RECOVERY}")
    try:
        record = decode_record(bytes(body))
    except RecordError as error:
        if intact(bytes(body), record_id):
            return str(error)
        raise StoreCorrupt(f"record store {path}: record {record_id} (seq {seq}) does not decode"
                           f" ({error}); {RECOVERY}") from None
    if record.id != record_id or record.kind != kind:
        if record.kind == kind and intact(bytes(body), record_id):
            # Decodes, but today's encoding of it differs (a field was added with a value the
            # old bytes lack): its id would change, so it is not this record any more.
            return f"it now hashes to {record.id}"
        raise StoreCorrupt(
            f"record store {path}: record {record_id} (seq {seq}) hashes to {record.id}"
            f" ({record.kind}); its body was altered; {RECOVERY}")
    return record
