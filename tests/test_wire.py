"""Wire messages: gossip envelopes and sync messages round-trip, and hostile bytes only ever
raise WireError with the reason a node counts."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.identity import Identity, sign_record, verify_record
from node.net.network import MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES
from node.net.wire import (
    MAX_BATCH_RECORDS,
    MAX_FETCH_IDS,
    MAX_SUMMARY_IDS,
    DropCounter,
    SyncFetch,
    SyncRecords,
    SyncSummary,
    SyncSummaryRequest,
    WireError,
    decode_batch,
    decode_or_count,
    decode_sync_request,
    decode_sync_response,
    encode_batch,
    encode_sync_request,
    encode_sync_response,
)
from research_dag import (
    Experiment,
    Hypothesis,
    Metric,
    Outcome,
    Problem,
    Record,
    canonical_encode,
    encode_record,
    validate_record,
)

IDENTITY = Identity.from_seed(bytes(range(32)))
OTHER = Identity.from_seed(bytes(range(1, 33)))


def _id(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def _hypothesis(n: int, identity: Identity = IDENTITY) -> Record:
    record = Hypothesis(
        pattern=_id(n), problem=_id(-1), mutation_kind="prune", text=f"idea {n}", created_ms=n
    )
    return sign_record(record, identity)


def _experiment(n: int, source_chars: int) -> Record:
    record = Experiment(
        problem=_id(-1),
        strategy={"strategy.py": "#" * source_chars},
        outcome=Outcome(status="ok", score=float(n), details={"r": 0.5}),
        created_ms=n,
    )
    return sign_record(record, IDENTITY)


def _problem(file_bytes: int) -> Record:
    record = Problem(
        name="big",
        statement="a problem with a large data file",
        metric=Metric(name="score", direction="minimize"),
        mutable=["strategy.py"],
        files={
            "strategy.py": b"def solve(x):\n    return x\n",
            "data/public/x": b"\0" * file_bytes,
        },
    )
    return sign_record(record, IDENTITY)


def _envelope(items: list[bytes], version: Any = 1) -> bytes:
    return canonical_encode({"v": version, "records": items})


def _reason(decode: Callable[[bytes], object], data: bytes) -> tuple[str, str]:
    with pytest.raises(WireError) as caught:
        decode(data)
    return caught.value.reason, str(caught.value)


ASCENDING_1025 = b"".join(n.to_bytes(32, "big") for n in range(MAX_FETCH_IDS + 1))
VALID_RECORDS = [_hypothesis(1), _hypothesis(2, OTHER), _experiment(3, 100)]
VALID_ENVELOPE = encode_batch(VALID_RECORDS)[0]


# ---- envelopes -----------------------------------------------------------------------------


def test_a_batch_round_trips_exactly() -> None:
    (envelope,) = encode_batch(VALID_RECORDS)
    decoded = decode_batch(envelope)
    assert decoded == VALID_RECORDS
    assert [r.id for r in decoded] == [r.id for r in VALID_RECORDS]
    assert all(verify_record(r) for r in decoded)
    assert envelope == canonical_encode(
        {"v": 1, "records": [encode_record(r) for r in VALID_RECORDS]}
    )


def test_batches_hold_at_most_64_records_and_drop_duplicates() -> None:
    records = [_hypothesis(n) for n in range(200)]
    envelopes = encode_batch([*records, records[0]])
    assert [len(decode_batch(e)) for e in envelopes] == [64, 64, 64, 8]
    assert [r for e in envelopes for r in decode_batch(e)] == records
    assert encode_batch([]) == []


def test_batches_split_tightly_under_the_size_limit() -> None:
    sizes = [20_000, 120_000, 70_000, 65_000, 250_000, 1_000, 90_000, 200_000, 66_000] * 3
    records = [_experiment(n, size) for n, size in enumerate(sizes)]
    envelopes = encode_batch(records)
    assert len(envelopes) > 3
    batches = [decode_batch(envelope) for envelope in envelopes]
    assert [r for batch in batches for r in batch] == records
    for envelope, batch, following in zip(envelopes, batches, batches[1:], strict=False):
        assert len(envelope) <= MAX_MESSAGE_BYTES
        grown = _envelope([encode_record(r) for r in [*batch, following[0]]])
        assert len(grown) > MAX_MESSAGE_BYTES or len(batch) == MAX_BATCH_RECORDS
    assert len(envelopes[-1]) <= MAX_MESSAGE_BYTES


def test_encode_batch_refuses_unsigned_and_oversize_records() -> None:
    unsigned = Hypothesis(pattern=_id(1), problem=_id(2), mutation_kind="x", text="t")
    with pytest.raises(WireError, match="unsigned") as caught:
        encode_batch([unsigned])
    assert caught.value.reason == "signature"
    with pytest.raises(WireError, match="fetch it by sync") as caught:
        encode_batch([_problem(MAX_MESSAGE_BYTES)])
    assert caught.value.reason == "oversize"


def test_unknown_version_is_its_own_reason() -> None:
    items = [encode_record(VALID_RECORDS[0])]
    assert _reason(decode_batch, _envelope(items, 2)) == ("version", "unsupported version 2")
    v2 = canonical_encode({"v": 2, "records": items, "compressed": True})
    assert _reason(decode_batch, v2) == ("version", "unsupported version 2")
    assert _reason(decode_batch, _envelope(items, True))[0] == "malformed"  # True is not 1


def test_oversize_and_truncated_messages_are_refused() -> None:
    assert _reason(decode_batch, b"\x80" * (MAX_MESSAGE_BYTES + 1))[0] == "oversize"
    for cut in (1, 10, len(VALID_ENVELOPE) // 2, len(VALID_ENVELOPE) - 1):
        assert _reason(decode_batch, VALID_ENVELOPE[:cut])[0] == "malformed"
    assert _reason(decode_batch, VALID_ENVELOPE + b"\x00")[0] == "malformed"
    assert _reason(decode_batch, b"")[0] == "malformed"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (canonical_encode([1, 2]), "must be a msgpack map"),
        (canonical_encode({"records": []}), "integer version"),
        (canonical_encode({"v": "1", "records": []}), "integer version"),
        (canonical_encode({"v": 1}), "exactly the keys"),
        (canonical_encode({"v": 1, "records": [], "extra": 0}), "exactly the keys"),
        (canonical_encode({"v": 1, "records": b"x"}), "array of bin"),
        (canonical_encode({"v": 1, "records": ["text"]}), "array of bin"),
        (canonical_encode({"v": 1, "records": []}), "1..64 records"),
        (_envelope([encode_record(_hypothesis(n)) for n in range(65)]), "1..64 records"),
        (msgpack.packb({"v": 1, "records": []}), "not canonically encoded"),  # unsorted keys
        (VALID_ENVELOPE[:-1] + b"\xcc\x01", "not canonically encoded"),  # v as uint8
        (b"\xc1", "not msgpack"),  # reserved byte
        (b"\xd4\x01\x00", "not msgpack"),  # ext type
        (b"\x91" * 5000 + b"\x80", "more than 16 deep"),  # deep nesting
        (b"\xdd\xff\xff\xff\xff", "not msgpack"),  # a 4-billion-element array header
    ],
)
def test_malformed_envelopes_name_the_problem(message: bytes, expected: str) -> None:
    reason, text = _reason(decode_batch, message)
    assert expected in text
    assert reason == "malformed"


def test_invalid_and_noncanonical_records_are_refused() -> None:
    signed = VALID_RECORDS[2]
    raw = signed.plain()
    cases = {
        "is not canonically encoded": [
            msgpack.packb(
                {key: raw[key] for key in sorted(raw)}, use_bin_type=True, use_single_float=True
            ),
            canonical_encode({k: v for k, v in raw.items() if k != "hypothesis_id"}),
        ],
        "record 0: ": [
            canonical_encode({**raw, "kind": "gossip"}),
            canonical_encode({**raw, "problem": "XYZ"}),
            canonical_encode({**raw, "surprise": 1}),
            b"\x93\x01\x02\x03",
            b"not msgpack at all",
        ],
        "repeats record 0": [encode_record(signed)],
    }
    for expected, items in cases.items():
        for item in items:
            prefix = [encode_record(signed)] if expected.startswith("repeats") else []
            reason, text = _reason(decode_batch, _envelope([*prefix, item]))
            assert reason == "invalid_record"
            assert expected.replace("record 0: ", "record 0") in text


def test_bad_and_missing_signatures_are_refused() -> None:
    signed = VALID_RECORDS[0]
    raw = signed.plain()
    flipped = validate_record(
        {**raw, "signature": bytes([raw["signature"][0] ^ 1]) + raw["signature"][1:]}
    )
    stolen = validate_record({**raw, "author": OTHER.peer_id})
    unsigned = Hypothesis(pattern=_id(1), problem=_id(2), mutation_kind="x", text="t")
    for record, expected in [
        (flipped, "does not verify"),
        (stolen, "does not verify"),
        (unsigned, "unsigned"),
        (validate_record({**raw, "signature": b""}), "unsigned"),
    ]:
        reason, text = _reason(decode_batch, _envelope([encode_record(record)]))
        assert (reason, expected in text) == ("signature", True)
    # One bad record spoils the whole batch: a node never half-accepts a message.
    items = [encode_record(VALID_RECORDS[1]), encode_record(flipped)]
    assert _reason(decode_batch, _envelope(items)) == (
        "signature",
        f"record 1 ({flipped.id}): signature does not verify for author {flipped.author!r}",
    )


def test_drop_counter_counts_by_reason() -> None:
    counter = DropCounter()
    assert decode_or_count(VALID_ENVELOPE, counter) == VALID_RECORDS
    unsigned = Hypothesis(pattern=_id(1), problem=_id(2), mutation_kind="x", text="t")
    for bad in (
        b"\x00" * (MAX_MESSAGE_BYTES + 1),
        b"junk",
        b"\x81",
        _envelope([encode_record(unsigned)]),
        _envelope([b"x"], version=9),
        _envelope([b"x"]),
    ):
        assert decode_or_count(bad, counter) is None
    assert dict(counter.counts) == {
        "oversize": 1,
        "malformed": 2,
        "signature": 1,
        "version": 1,
        "invalid_record": 1,
    }
    assert counter.total == 6


# ---- sync messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        SyncSummaryRequest(),
        SyncSummaryRequest(problems=sorted(_id(n) for n in range(3))),
        SyncSummaryRequest(problems=[_id(1)], after=_id(9)),
        SyncFetch(ids=sorted(_id(n) for n in range(MAX_FETCH_IDS))),
    ],
)
def test_sync_requests_round_trip_within_the_request_limit(
    request_: SyncSummaryRequest | SyncFetch,
) -> None:
    data = encode_sync_request(request_)
    assert len(data) <= MAX_REQUEST_BYTES
    assert decode_sync_request(data) == request_


def test_sync_requests_sort_and_deduplicate_ids_on_the_wire() -> None:
    ids = [_id(3), _id(1), _id(3), _id(2)]
    decoded = decode_sync_request(encode_sync_request(SyncFetch(ids=ids)))
    assert decoded == SyncFetch(ids=sorted(set(ids)))


def test_summary_truncates_at_the_limit_and_pages_with_after() -> None:
    ids = [_id(n) for n in range(MAX_SUMMARY_IDS + 5)]
    first = SyncSummary.limited(reversed(ids))
    assert first.truncated and len(first.ids) == MAX_SUMMARY_IDS
    assert first.ids == sorted(ids)[:MAX_SUMMARY_IDS]
    data = encode_sync_response(first)
    assert len(data) <= MAX_RESPONSE_BYTES
    assert decode_sync_response(data) == first
    rest = SyncSummary.limited(ids, after=first.ids[-1])
    assert not rest.truncated
    assert first.ids + rest.ids == sorted(ids)
    assert decode_sync_response(encode_sync_response(rest)) == rest


def test_fetch_responses_stay_under_the_response_limit() -> None:
    wanted = [_experiment(n, 250_000) for n in range(20)]  # ~5 MB in all
    unsigned = Hypothesis(pattern=_id(1), problem=_id(2), mutation_kind="x", text="t")
    small = _hypothesis(7)
    # Every single record fits one response (packages are capped at 3 MiB, experiments at
    # 16 x 256k characters), so only unsigned records are left out outright.
    response = SyncRecords.limited([unsigned, *wanted, wanted[0], small])
    assert unsigned not in response.records
    assert small in response.records  # a smaller record still fills the space left
    assert 10 < len(response.records) < 20
    data = encode_sync_response(response)
    assert len(data) <= MAX_RESPONSE_BYTES
    requested = {r.id for r in [*wanted, small]}
    assert decode_sync_response(data, requested) == response
    assert _reason(lambda d: decode_sync_response(d, {small.id}), data)[0] == "invalid_record"


def test_an_empty_fetch_response_is_valid() -> None:
    data = encode_sync_response(SyncRecords([]))
    assert decode_sync_response(data, set()) == SyncRecords([])


@pytest.mark.parametrize(
    ("decode", "message", "expected"),
    [
        (decode_sync_request, {"type": "fetch", "ids": b""}, "1..1024"),
        (decode_sync_request, {"type": "fetch", "ids": b"\x00" * 31}, "whole 32-byte ids"),
        (decode_sync_request, {"type": "fetch", "ids": b"\x01" * 32 + b"\x00" * 32}, "ascending"),
        (decode_sync_request, {"type": "fetch", "ids": b"\x01" * 64}, "ascending"),
        (decode_sync_request, {"type": "fetch", "ids": ASCENDING_1025}, "ids holds 1025 ids"),
        (decode_sync_request, {"type": "fetch", "ids": [b"\x00" * 32]}, "whole 32-byte ids"),
        (decode_sync_request, {"type": "fetch"}, "exactly the keys"),
        (decode_sync_request, {"type": "push", "ids": b""}, "unknown sync request type"),
        (decode_sync_request, {"type": "summary", "problems": None}, "exactly the keys"),
        (
            decode_sync_request,
            {"type": "summary", "problems": None, "after": b""},
            "one 32-byte id",
        ),
        (
            decode_sync_request,
            {"type": "summary", "problems": b"", "after": None},
            "1..256",
        ),
        (decode_sync_response, {"ids": b"", "truncated": 0}, "boolean"),
        (decode_sync_response, {"ids": b"\x02" * 32 + b"\x01" * 32, "truncated": False}, "asc"),
        (decode_sync_response, {"ids": b"", "records": []}, "exactly the keys"),
        (decode_sync_response, {"records": [b"x"] * 1025}, "not msgpack within limits"),
    ],
)
def test_malformed_sync_messages_name_the_problem(
    decode: Callable[[bytes], object], message: dict[str, Any], expected: str
) -> None:
    reason, text = _reason(decode, canonical_encode({"v": 1, **message}))
    assert reason == "malformed"
    assert expected in text


def test_sync_messages_check_version_and_size() -> None:
    fetch = {"v": 3, "type": "fetch", "ids": b""}
    assert _reason(decode_sync_request, canonical_encode(fetch)) == (
        "version",
        "unsupported version 3",
    )
    assert _reason(decode_sync_request, b"\x80" * (MAX_REQUEST_BYTES + 1))[0] == "oversize"
    assert _reason(decode_sync_response, b"\x80" * (MAX_RESPONSE_BYTES + 1))[0] == "oversize"


def test_local_construction_is_validated_too() -> None:
    with pytest.raises(WireError):
        SyncFetch(ids=[])
    with pytest.raises(WireError):
        SyncFetch(ids=["A" * 64])
    with pytest.raises(WireError):
        SyncSummaryRequest(after="ab")
    with pytest.raises(WireError):
        SyncSummary(ids=[_id(2), _id(1)] if _id(2) > _id(1) else [_id(1), _id(2)])


# ---- properties ----------------------------------------------------------------------------

DECODERS: list[Callable[[bytes], object]] = [
    decode_batch,
    decode_sync_request,
    decode_sync_response,
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hex_ids = st.binary(min_size=32, max_size=32).map(bytes.hex)
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=100),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
packed_ids = st.lists(st.binary(min_size=32, max_size=32), max_size=4).map(
    lambda ids: b"".join(sorted(ids))
)
valid_items = st.sampled_from([encode_record(r) for r in VALID_RECORDS])


def _mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.integers(0, 7).flatmap(lambda roll: msgpack_values if roll == 0 else good)


# The shapes of real messages with a field or two wrong, so fuzzing reaches the later checks.
message_like = st.one_of(
    st.fixed_dictionaries(
        {
            "v": _mostly(st.just(1)),
            "records": _mostly(st.lists(valid_items | st.binary(max_size=50), max_size=4)),
        }
    ),
    st.fixed_dictionaries(
        {
            "v": _mostly(st.just(1)),
            "type": _mostly(st.just("fetch")),
            "ids": _mostly(packed_ids),
        }
    ),
    st.fixed_dictionaries(
        {
            "v": _mostly(st.just(1)),
            "type": _mostly(st.just("summary")),
            "problems": _mostly(st.none() | packed_ids),
            "after": _mostly(st.none() | packed_ids),
        }
    ),
    st.fixed_dictionaries(
        {"v": _mostly(st.just(1)), "ids": _mostly(packed_ids), "truncated": _mostly(st.booleans())}
    ),
    st.dictionaries(st.sampled_from(["v", "records", "type", "ids", "after"]), msgpack_values),
)


def _decode_everyway(data: bytes) -> None:
    """Every decoder either refuses `data` with WireError or returns exactly valid content."""
    for decode in DECODERS:
        with contextlib.suppress(WireError):
            _check_decoded(decode(data))


def _check_decoded(result: object) -> None:
    """Whatever decodes is exactly valid: canonical, signed records and well-formed ids."""
    if isinstance(result, list):
        records = result
    elif isinstance(result, SyncRecords):
        records = result.records
    else:
        return
    for record in records:
        assert verify_record(record)
        assert validate_record(record.plain()) == record


@FUZZ
@given(st.binary(max_size=2_000))
def test_random_bytes_only_ever_raise_wire_error(data: bytes) -> None:
    _decode_everyway(data)


@FUZZ
@given(message_like)
def test_random_message_shapes_only_ever_raise_wire_error(message: dict[str, Any]) -> None:
    data = canonical_encode(message)
    _decode_everyway(data)


VALID_MESSAGES = [
    VALID_ENVELOPE,
    encode_sync_request(SyncSummaryRequest(problems=[_id(1), _id(2)], after=_id(3))),
    encode_sync_request(SyncFetch(ids=[_id(n) for n in range(4)])),
    encode_sync_response(SyncSummary.limited(_id(n) for n in range(4))),
    encode_sync_response(SyncRecords(VALID_RECORDS)),
]


@FUZZ
@given(st.sampled_from(VALID_MESSAGES), st.data())
def test_mutated_valid_messages_only_ever_raise_wire_error(message: bytes, data: Any) -> None:
    mutated = bytearray(message)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(mutated)))
        operation = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if operation == "insert" or not mutated:
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif operation == "flip":
            mutated[min(at, len(mutated) - 1)] ^= data.draw(st.integers(1, 255))
        else:
            del mutated[at : at + data.draw(st.integers(1, 8))]
    _decode_everyway(bytes(mutated))


@FUZZ
@given(st.lists(hex_ids, min_size=1, max_size=50, unique=True), st.none() | hex_ids)
def test_sync_messages_round_trip(ids: list[str], after: str | None) -> None:
    fetch = SyncFetch(ids=sorted(ids))
    assert decode_sync_request(encode_sync_request(fetch)) == fetch
    summary_request = SyncSummaryRequest(problems=sorted(ids), after=after)
    assert decode_sync_request(encode_sync_request(summary_request)) == summary_request
    summary = SyncSummary.limited(ids, after=after)
    assert decode_sync_response(encode_sync_response(summary)) == summary
    assert all(after is None or record_id > after for record_id in summary.ids)


def test_the_protocol_document_worked_example_is_current() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    seed = bytes.fromhex("7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d")
    record = Hypothesis(
        pattern="11" * 32,
        problem="22" * 32,
        mutation_kind="prune_list",
        text="Pruning works here too.",
        created_ms=1_700_000_000_000,
    )
    signed = sign_record(record, Identity.from_seed(seed))
    canonical = signed.canonical_bytes().hex()
    wrapped = "\n".join(canonical[start : start + 96] for start in range(0, len(canonical), 96))
    (envelope,) = encode_batch([signed])
    assert wrapped in doc
    assert f"Canonical bytes ({len(signed.canonical_bytes())} bytes, hex)" in doc
    assert f"Record id: `{signed.id}`" in doc
    assert f"Signature: `{signed.signature.hex()}`" in doc
    assert f"full encoding ({len(encode_record(signed))} bytes)" in doc
    assert (
        f"({len(envelope)} bytes), whose message id is\n`{hashlib.sha256(envelope).hexdigest()}`"
        in doc
    )


def test_an_unset_added_field_is_left_out_so_old_records_keep_their_ids() -> None:
    problem = Problem(name="p", statement="s", metric=Metric(name="m", direction="maximize"),
                      mutable=["strategy.py"], files={"strategy.py": b"x = 1\n", "gen.py": b""})
    added = {"generator", "runner", "model"}  # every field Problem gained after version 1
    assert added == Problem.ADDED_FIELDS
    version_1 = problem.model_dump(mode="python", exclude={"signature", *added})
    assert problem.canonical_bytes() == canonical_encode(version_1)
    with_generator = problem.model_copy(update={"generator": "gen.py"})
    assert b"generator" in with_generator.canonical_bytes()
    signed = sign_record(problem, IDENTITY)
    for name in sorted(added):
        explicit_nil = canonical_encode({**signed.plain(), name: None})
        with pytest.raises(WireError, match="not canonically encoded"):
            decode_batch(canonical_encode({"v": 1, "records": [explicit_nil]}))


@given(st.lists(st.integers(min_value=0, max_value=70_000), max_size=40))
def test_the_frame_size_arithmetic_is_exact(sizes: list[int]) -> None:
    """Batches and fetch responses are cut by arithmetic, not by encoding: it must give the
    exact length of the message those items make, at every header boundary."""
    from node.net.frames import _bin_size, _records_frame_size, _records_message

    items = [b"x" * size for size in sizes]
    expected = len(_records_message(items))
    assert _records_frame_size(len(items), sum(_bin_size(size) for size in sizes)) == expected
