"""The decoded-message memo: one decode serves every node that meets the same bytes, an invalid
message is still a drop for each node that meets it, and the memo stays within its bounds."""

from __future__ import annotations

import pytest

from node.identity import Identity, sign_record
from node.net.decoded import DecodedMessages
from node.net.wire import (
    DropCounter,
    SyncRecords,
    SyncSummary,
    WireError,
    encode_batch,
    encode_sync_response,
)
from research_dag import Experiment, Outcome, Record

AUTHOR = Identity.from_seed(b"\x07" * 32)
OTHER = Identity.from_seed(b"\x08" * 32)


def _record(tag: int) -> Record:
    return sign_record(
        Experiment(problem="0" * 64, strategy={"strategy.py": f"# {tag}\n"},
                   outcome=Outcome(status="ok", score=float(tag)), created_ms=tag),
        AUTHOR,
    )


def _envelope(*records: Record) -> bytes:
    [envelope] = encode_batch(list(records))
    return envelope


def test_nodes_sharing_the_memo_decode_an_envelope_once() -> None:
    record = _record(1)
    envelope = _envelope(record)
    memo = DecodedMessages()
    first = memo.envelope(envelope, DropCounter())
    # Equal bytes in another object, as a second host would read them from its socket.
    second = memo.envelope(bytes(bytearray(envelope)), DropCounter())
    assert first == second == [record]
    assert first is not None and second is not None and first[0] is second[0]
    assert (memo.misses, memo.hits) == (1, 1)


def test_an_invalid_envelope_is_a_drop_for_every_node_that_meets_it() -> None:
    record = _record(2)
    forged = record.model_copy(update={"signature": OTHER.sign(record.canonical_bytes())})
    envelope = _envelope(forged)
    memo = DecodedMessages()
    drops = [DropCounter(), DropCounter()]
    assert [memo.envelope(envelope, counter) for counter in drops] == [None, None]
    assert [counter.counts["signature"] for counter in drops] == [1, 1]
    assert memo.misses == 1  # the signature was checked once


def test_the_memo_keeps_the_most_recently_used_within_its_bounds() -> None:
    one, two, three = (_envelope(_record(tag)) for tag in (3, 4, 5))
    memo = DecodedMessages(max_messages=2)
    for envelope in (one, two, one, three):  # `three` pushes out `two`, used least recently
        memo.envelope(envelope, DropCounter())
    assert (memo.misses, memo.hits) == (3, 1)
    memo.envelope(one, DropCounter())
    memo.envelope(two, DropCounter())
    assert (memo.misses, memo.hits) == (4, 2)
    by_size = DecodedMessages(max_messages=100, max_bytes=len(one) + len(two))
    for envelope in (one, two, three, one):  # bytes allow two envelopes of this size
        by_size.envelope(envelope, DropCounter())
    assert by_size.misses == 4


def test_sync_summaries_are_remembered_and_other_responses_refused() -> None:
    ids = sorted(_record(tag).id for tag in range(6, 10))
    data = encode_sync_response(SyncSummary.limited(ids))
    memo = DecodedMessages()
    summary = memo.sync_summary(data)
    assert summary.ids == ids and memo.sync_summary(bytes(bytearray(data))) is summary
    with pytest.raises(WireError):
        memo.sync_summary(encode_sync_response(SyncRecords([_record(10)])))
    with pytest.raises(WireError):
        memo.sync_summary(b"\x00not msgpack")


def test_records_in_different_sync_responses_are_checked_once() -> None:
    one, two = _record(11), _record(12)
    memo = DecodedMessages()
    first = memo.sync_records(encode_sync_response(SyncRecords([one, two])), [one.id, two.id])
    # Another peer's response: other bytes, but the same record inside is not verified again.
    second = memo.sync_records(encode_sync_response(SyncRecords([two])), [two.id])
    assert first.records == [one, two] and second.records[0] is first.records[1]
    with pytest.raises(WireError, match="not requested"):
        memo.sync_records(encode_sync_response(SyncRecords([one])), [two.id])
    forged = one.model_copy(update={"signature": OTHER.sign(one.canonical_bytes())})
    with pytest.raises(WireError, match="signature"):
        memo.sync_records(encode_sync_response(SyncRecords([forged])), [forged.id])
