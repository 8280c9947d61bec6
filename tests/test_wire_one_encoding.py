"""The wire's record decode, which derives every check from one canonical encoding (issue 10),
accepts exactly what the decode before it accepted (three encodings a record, nesting scanned on
the bytes first): random records, signed well or badly, and random mutations of their bytes."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.identity import Identity, IdentityError, public_key_from_peer_id, sign_record
from node.net.wire import WireError, decode_batch
from research_dag import (
    MAX_PACKAGE_BYTES,
    MAX_RECORD_OBJECTS,
    Experiment,
    Hypothesis,
    Metric,
    Outcome,
    Pattern,
    Problem,
    Record,
    RecordError,
    Verification,
    canonical_encode,
    encode_record,
    msgpack_excess,
    record_encodings,
    validate_record,
)

IDENTITY = Identity.from_seed(bytes(range(32)))
OTHER = Identity.from_seed(bytes(range(1, 33)))
EQUIVALENCE = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


def _slow_decode(item: bytes) -> tuple[str, str | None]:
    """The decode of 7b7a93d, spelled out: (verdict, id). The verdict is "ok", "signature", or
    why the record is invalid: "deep", "many", "schema" (not msgpack, not a map, the schema
    refuses it) or "canonical"."""
    excess = msgpack_excess(item, max_objects=MAX_RECORD_OBJECTS)
    if excess is not None:
        return excess, None
    try:
        raw = msgpack.unpackb(item, raw=False, strict_map_key=True, max_bin_len=MAX_PACKAGE_BYTES)
        record = validate_record(raw)
    except (ValueError, msgpack.UnpackException, TypeError):  # RecordError is a ValueError
        return "schema", None
    if canonical_encode(record.plain()) != item:
        return "canonical", None
    unsigned = canonical_encode(record.plain(signed=False))
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key_from_peer_id(record.author))
        if len(record.signature) != 64:
            raise InvalidSignature
        key.verify(record.signature, unsigned)
    except (IdentityError, InvalidSignature, ValueError):
        return "signature", None
    return "ok", hashlib.sha256(unsigned).hexdigest()


def _fast_decode(item: bytes) -> tuple[str, str | None]:
    """The wire's decode today, the same verdicts read from its WireError."""
    try:
        [record] = decode_batch(canonical_encode({"v": 1, "records": [item]}))
    except WireError as error:
        message = str(error)
        if error.reason == "signature":
            return "signature", None
        assert error.reason == "invalid_record", message
        if "canonically" in message:
            return "canonical", None
        if "deep" in message:
            return "deep", None
        if "msgpack objects" in message:
            return "many", None
        return "schema", None
    assert encode_record(record) == item  # the cached bytes are the received ones
    return "ok", record.id


ids = st.binary(min_size=32, max_size=32).map(bytes.hex)
names = st.text(max_size=12)
# Floats that are whole numbers are the classic trap (issue 10, item 3): msgpack libraries
# that re-encode 1.0 as 1, and an integer that the schema reads as a float.
numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-5, 5).map(float)
outcomes = st.builds(
    Outcome,
    status=st.sampled_from(["ok", "crash", "out_of_fuel", "invalid"]),
    score=st.none() | numbers,
    items=st.dictionaries(names, st.booleans(), max_size=3),
    strategy_fuel=st.integers(0, 2**63 - 1),
    stderr_tail=st.text(max_size=30),
    details=st.dictionaries(
        names, numbers | st.integers(-(2**63), 2**63 - 1) | names | st.booleans(), max_size=4
    ),
)
records = st.one_of(
    st.builds(
        Experiment,
        problem=ids,
        parent=st.none() | ids,
        strategy=st.just({"strategy.py": "x = 1\n"}) | st.text(max_size=80).map(
            lambda text: {"strategy.py": text, "b.py": "y"}
        ),
        diff=st.text(max_size=40),
        description=st.text(max_size=40),
        outcome=outcomes,
        created_ms=st.integers(0, 2**63 - 1),
    ),
    st.builds(Verification, experiment=ids, outcome=outcomes, match=st.booleans()),
    st.builds(Hypothesis, pattern=ids, problem=ids, mutation_kind=names, text=st.text(max_size=40)),
    st.builds(
        Pattern,
        mutation_kind=names,
        text=st.text(max_size=40),
        supporting=st.lists(ids, max_size=3),
        success_rate=st.floats(0.0, 1.0),
        mean_delta=numbers,
    ),
    st.builds(
        Problem,
        name=names,
        statement=st.text(max_size=40),
        metric=st.builds(Metric, name=names, direction=st.sampled_from(["maximize", "minimize"])),
        mutable=st.just(["strategy.py"]),
        files=st.binary(max_size=40).map(lambda data: {"strategy.py": b"x", "data/a": data}),
    ),
)


def _signed(record: Record, how: str) -> Record:
    if how == "unsigned":
        return record
    signed = sign_record(record, IDENTITY)
    if how == "forged":  # another key's signature under this author
        forged = sign_record(record, OTHER).signature
        return signed.model_copy(update={"signature": forged})
    return signed


def _mutated(item: bytes, how: int, where: int, data: bytes) -> bytes:
    """The bytes changed one way: a byte, a cut, an insertion, or the values re-packed in a
    form that is not canonical or that the schema reads differently."""
    at = where % (len(item) + 1)
    raw: dict[str, Any] = msgpack.unpackb(item, raw=False)
    match how:
        case 0:
            return item
        case 1:
            return item[:at] + data[:1] + item[at + 1 :]
        case 2:
            return item[:at] + item[at + len(data) :]
        case 3:
            return item[:at] + data + item[at:]
        case 4:  # keys in another order
            return bytes(msgpack.packb(dict(reversed(raw.items())), use_bin_type=True))
        case 5:  # whole floats as integers, and other floats as float32 where they fit
            try:
                packed = msgpack.packb(_whole_as_int(raw), use_bin_type=True, use_single_float=True)
            except OverflowError:
                packed = msgpack.packb(_whole_as_int(raw), use_bin_type=True)
            return bytes(packed)
        case 6:  # a field dropped (the schema may fill in its default)
            raw.pop(sorted(raw)[at % len(raw)])
        case 7:  # an unknown field, or an added one present as nil
            raw[data.hex()[:6] or "changes"] = None
        case _:  # an integer in a wider form than needed
            return item.replace(b"\xaacreated_ms\x00", b"\xaacreated_ms\xcf" + bytes(8))
    return canonical_encode(raw)


def _whole_as_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_as_int(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_as_int(item) for item in value]
    return value


@EQUIVALENCE
@given(
    records,
    st.sampled_from(["signed", "signed", "signed", "unsigned", "forged"]),
    st.integers(0, 8),
    st.integers(0, 10_000),
    st.binary(min_size=1, max_size=8),
)
def test_one_encoding_accepts_exactly_what_three_did(
    record: Record, signing: str, how: int, where: int, data: bytes
) -> None:
    item = _mutated(encode_record(_signed(record, signing)), how, where, data)
    assert _fast_decode(item) == _slow_decode(item)


@pytest.mark.parametrize("depth", [15, 16, 17, 40, 1500])
def test_nesting_in_small_records_is_judged_as_before(depth: int) -> None:
    """Small records are unpacked before their nesting is measured (on the value, not the
    bytes): the verdicts stay those of the byte scan, at the bound and far past msgpack's own
    stack limit (1,024)."""
    head = b"\x82\xa4kind\xa7pattern\xaasupporting" + b"\x91" * depth
    for item in (head + b"\x01", head):  # whole, and cut short after the nesting
        assert _fast_decode(item) == _slow_decode(item)


def test_record_encodings_are_the_encodings_made_one_at_a_time() -> None:
    record = sign_record(Hypothesis(pattern="a" * 64, problem="b" * 64, mutation_kind="k",
                                    text="t"), IDENTITY)
    fresh = validate_record(record.plain())
    encoded, unsigned = record_encodings(fresh)
    assert encoded == canonical_encode(record.plain())
    assert unsigned == record.canonical_bytes()
    assert fresh.id == record.id == hashlib.sha256(unsigned).hexdigest()
    assert encode_record(fresh) == encoded


def test_a_record_error_still_names_the_field() -> None:
    item = canonical_encode({"kind": "hypothesis", "pattern": "x"})
    with pytest.raises(WireError, match="record 0: ") as refused:
        decode_batch(canonical_encode({"v": 1, "records": [item]}))
    assert refused.value.reason == "invalid_record"
    assert not isinstance(refused.value, RecordError)


def _old_canonical(value: Any, depth_left: int = 16) -> Any:
    """canonical_encode's walk as 7b7a93d wrote it (a call per value)."""
    if isinstance(value, dict | list | tuple):
        if depth_left <= 0:
            raise RecordError("deep")
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                raise RecordError("keys")
            return {key: _old_canonical(value[key], depth_left - 1) for key in sorted(value)}
        return [_old_canonical(item, depth_left - 1) for item in value]
    return value


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | names
    | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.lists(children, max_size=3).map(tuple)
    | st.dictionaries(names | st.binary(max_size=2) | st.integers(0, 3), children, max_size=4),
    max_leaves=40,
)


@EQUIVALENCE
@given(values, st.integers(0, 20))
def test_canonical_encoding_is_unchanged(value: Any, wraps: int) -> None:
    for _ in range(wraps):
        value = [value]
    try:
        expected: bytes | None = msgpack.packb(
            _old_canonical(value), use_bin_type=True, use_single_float=False
        )
    except RecordError:
        expected = None
    try:
        assert canonical_encode(value) == expected
    except RecordError:
        assert expected is None
