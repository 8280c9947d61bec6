"""Tests of what a sync fetch is served from, on real SQLite files: a record's stored bytes,
re-assembled and checked against its id but not decoded again, are exactly the bytes it arrived
with; damage is named, never sent; and records read back carry the right id and bytes."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_blobs import FIXTURE, PROBLEM, V1_IDS, child_of, damage

from node.identity import Identity, sign_record
from node.net.wire import (
    MAX_FETCH_IDS,
    SyncRecords,
    decode_sync_response,
    encode_stored_records,
    encode_sync_response,
)
from node.store import RecordStore, StoreCorrupt
from research_dag import (
    Experiment,
    Outcome,
    Record,
    Verification,
    encode_record,
    validate_record,
)

AUTHOR = Identity.from_seed(b"\x33" * 32)
# tests/fixtures/store_v2.sqlite: `family(V2_STEPS)` stored 5 a batch, with meta iteration=7, by
# the version 2 store as of commit ed862a0 (before fetches were served from stored bytes).
V2_FIXTURE = Path(__file__).parent / "fixtures" / "store_v2.sqlite"
V2_STEPS = [(n * 7, n - 1 if n % 5 else n - 3, "X = 1\n" if n % 4 else f"X = {n}\n")
            for n in range(24)]


def signed(record: Record) -> Record:
    return sign_record(record, AUTHOR)


def family(steps: list[tuple[int, int, str]]) -> list[Record]:
    """Signed experiments, each the child of an earlier one (or none), and a verification."""
    made: list[Experiment] = []
    for n, (line, parent_at, extra) in enumerate(steps):
        parent = made[parent_at % len(made)] if made and parent_at >= 0 else None
        child = signed(child_of(parent, n, line, extra=extra))
        assert isinstance(child, Experiment)
        made.append(child)
    check = signed(Verification(experiment=made[-1].id, outcome=made[-1].outcome, match=True))
    return [signed(PROBLEM), *made, check]


def assert_true_to_itself(record: Record) -> None:
    """The id and bytes a record read back carries (cached by the store) are the ones it would
    compute afresh from its values."""
    fresh = validate_record(record.plain())
    assert record.id == fresh.id
    assert encode_record(record) == encode_record(fresh)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(st.tuples(st.integers(0, 200), st.integers(-1, 30), st.text(max_size=40)),
                   min_size=1, max_size=25),
    batch=st.integers(1, 7),
    asked=st.randoms(use_true_random=False),
)
def test_served_bytes_are_the_records_bytes_in_stored_order(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, int, str]], batch: int,
    asked: object,
) -> None:
    records = family(steps)
    path = tmp_path_factory.mktemp("serve") / "records.sqlite"
    with RecordStore.open(path) as store:
        for start in range(0, len(records), batch):
            store.add_many(records[start : start + batch])
    wanted = [r.id for r in records]
    asked.shuffle(wanted)  # type: ignore[attr-defined]
    with RecordStore.open(path) as store:  # a fresh cache: every file read from its deltas
        served = store.encoded_many([*wanted, "0" * 64])  # one it lacks
        assert served == [(r.id, encode_record(r)) for r in records]
        for record in store.get_many(wanted):
            assert_true_to_itself(record)


def test_rows_version_1_wrote_are_served_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    shutil.copy(FIXTURE, path)
    raw = sqlite3.connect(path)
    bodies = {str(i): bytes(b) for i, b in raw.execute("SELECT id, body FROM records")}
    raw.close()
    with RecordStore.open(path) as store:
        assert dict(store.encoded_many(V1_IDS)) == bodies
        for record in store.iter_records():
            assert_true_to_itself(record)


def test_a_store_version_2_wrote_reads_and_serves_the_records_it_was_given(
    tmp_path: Path,
) -> None:
    path = tmp_path / "records.sqlite"
    shutil.copy(V2_FIXTURE, path)
    records = family(V2_STEPS)
    with RecordStore.open(path) as store:
        assert store.get_meta("iteration") == b"7"
        loaded = list(store.iter_records())  # files inflated from deltas up to 15 deep
        assert [encode_record(r) for r in loaded] == [encode_record(r) for r in records]
        for record in loaded:
            assert_true_to_itself(record)
        assert store.encoded_many(r.id for r in records) == [
            (r.id, encode_record(r)) for r in records]
        newest = records[-2]
        assert isinstance(newest, Experiment)
        child = signed(child_of(newest, 99, 3))
        assert store.add(child)
    with RecordStore.open(path) as store:
        assert store.get(child.id) == child
        assert store.encoded_many([child.id]) == [(child.id, encode_record(child))]


def test_unsigned_and_outdated_records_are_not_served(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    unsigned = child_of(None, 1, 1)
    kept = signed(child_of(None, 2, 2))
    with RecordStore.open(path) as store:
        store.add_many([unsigned, kept])
        assert store.encoded_many([unsigned.id, kept.id]) == [(kept.id, encode_record(kept))]
        store.outdated.add(kept.id)  # as a load that found today's schema refuses it
        assert store.encoded_many([kept.id]) == []


@pytest.mark.parametrize("sql", [
    "UPDATE blobs SET data = X'789c0300000000' WHERE base IS NOT NULL",  # inflates to b""
    "DELETE FROM blobs WHERE base IS NOT NULL",  # files gone
    "UPDATE records SET body = X'0200' WHERE kind = 2",  # an experiment's body, not zlib
    "UPDATE records SET body = X'00c1' WHERE kind = 2",  # full bytes, not msgpack
    "UPDATE records SET refs = X'c0' WHERE kind = 2",  # no file list
    "UPDATE records SET kind = 2 WHERE kind = 3",  # a verification's row says experiment
])
def test_damage_is_named_not_served(tmp_path: Path, sql: str) -> None:
    records = family([(n, n - 1, "X = 1\n") for n in range(5)])
    path = tmp_path / "records.sqlite"
    with RecordStore.open(path) as store:
        store.add_many(records)
    damage(path, sql)
    with RecordStore.open(path) as store, pytest.raises(StoreCorrupt, match=path.name):
        store.encoded_many([r.id for r in records])


def test_a_full_row_holding_another_records_bytes_is_named(tmp_path: Path) -> None:
    records = family([(1, -1, "X = 1\n")])
    problem, check = records[0], records[-1]
    path = tmp_path / "records.sqlite"
    with RecordStore.open(path) as store:
        store.add_many(records)
    damage(path, f"UPDATE records SET body = x'00{encode_record(problem).hex()}'"
                  f" WHERE id = x'{check.id}'")
    with RecordStore.open(path) as store, pytest.raises(StoreCorrupt, match=check.id):
        store.encoded_many([check.id])


def test_an_intact_row_in_another_encoding_is_served_canonical(tmp_path: Path) -> None:
    """Bytes that decode and hash right but are not canonical (an integer in a wider form than
    needed) would be refused by the requester as they are: re-encoded instead."""
    records = family([(1, -1, "X = 1\n")])
    check = records[-1]
    canonical = encode_record(check)
    wide = canonical.replace(b"\xaacreated_ms\x00", b"\xaacreated_ms\xcf" + bytes(8))
    assert wide != canonical
    path = tmp_path / "records.sqlite"
    with RecordStore.open(path) as store:
        store.add_many(records)
    damage(path, f"UPDATE records SET body = x'00{wide.hex()}' WHERE id = x'{check.id}'")
    with RecordStore.open(path) as store:
        assert store.encoded_many([check.id]) == [(check.id, canonical)]
        assert store.get(check.id) == check


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.sampled_from([10, 300, 70_000, 250_000]), max_size=24))
def test_a_response_of_stored_bytes_is_the_one_records_make(sizes: list[int]) -> None:
    """Same records kept, same bytes, as SyncRecords.limited + encode_sync_response, including
    records skipped because they no longer fit the response."""
    records: list[Record] = []
    for n, size in enumerate(sizes):
        made = signed(Experiment(problem="1" * 64, strategy={"strategy.py": "#" * size},
                                 outcome=Outcome(status="ok"), created_ms=n))
        records.append(made)
    message, ids = encode_stored_records((r.id, encode_record(r)) for r in records)
    expected = SyncRecords.limited(records)
    assert message == encode_sync_response(expected)
    assert ids == [r.id for r in expected.records]
    decoded = decode_sync_response(message, requested=set(ids))
    assert isinstance(decoded, SyncRecords)
    assert [r.id for r in decoded.records] == ids


def test_a_response_holds_at_most_a_fetchs_worth(tmp_path: Path) -> None:
    item = encode_record(signed(child_of(None, 1, 1)))
    _, ids = encode_stored_records((f"{n:064x}", item) for n in range(MAX_FETCH_IDS + 5))
    assert len(ids) == MAX_FETCH_IDS


def test_serving_stops_reading_at_the_size_a_response_holds(tmp_path: Path) -> None:
    """A fetch of many large records read and inflated every one of them (256 ids of 1 MB:
    1.6 s of the store's lock, which an intake waited on) to send the few a response holds.
    With `max_bytes` it reads SERVE_PAGE_ROWS at a time and stops once that many bytes were
    read: the first records in stored order, exactly as without the bound."""
    from node.store import SERVE_PAGE_ROWS

    records = [signed(child_of(None, n, n, extra=f"X = {n}\n" + "#" * 50_000 + "\n"))
               for n in range(3 * SERVE_PAGE_ROWS)]
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        store.add_many(records)
        everything = store.encoded_many(r.id for r in records)
        size = sum(len(encoded) for _, encoded in everything)
        bound = size // 10
        served = store.encoded_many((r.id for r in records), max_bytes=bound)
    assert served == everything[:len(served)]
    assert sum(len(encoded) for _, encoded in served[:-1]) <= bound
    assert bound < sum(len(encoded) for _, encoded in served)
    assert len(served) < len(records) // 2
