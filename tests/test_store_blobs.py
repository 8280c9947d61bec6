"""Tests of the store's content-addressed files (schema version 2) on real SQLite files: records
come back byte for byte, a store version 1 wrote opens and upgrades in place, files are stored
once and as deltas, and damage to a file is named, never served."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.store import MAX_DELTA_DEPTH, SCHEMA_VERSION, RecordStore, StoreCorrupt
from research_dag import (
    Experiment,
    Metric,
    Outcome,
    Problem,
    Record,
    ResearchDag,
    encode_record,
)

FIXTURE = Path(__file__).parent / "fixtures" / "store_v1.sqlite"
# What tests/fixtures/store_v1.sqlite holds: written by the version 1 store (commit 2f207dc).
V1_IDS = {
    "d97dd8d5084463c611884a84cf0967665556367b930a99863f32a8e34a7ab09b",  # problem
    "2ba90cf5879fd815db5497977cb2953e3223f83f6c8f5a40f90ab0867fe3dc85",  # baseline
    "a8b0e2f021674d9e6cd9784807ce2c06b81b1f14b0182a60c4d90f71024220e9",  # its child
    "105279cb3d5da85f8feaa10dd531e60fdbecc6e8cb798c15836cad21aeafc368",  # a verification
}
PROBLEM = Problem(
    name="p",
    statement="optimise p",
    metric=Metric(name="score", direction="maximize"),
    mutable=["strategy.py", "extra.py"],
    files={"strategy.py": b"def solve(inputs):\n    return 1\n", "extra.py": b"X = 1\n"},
)
LINES = [f"WEIGHT_{n} = {n}.5  # a tuned constant of the strategy\n" for n in range(60)]


def child_of(parent: Experiment | None, step: int, line: int, extra: str = "X = 1\n"
             ) -> Experiment:
    lines = list(LINES) if parent is None else parent.strategy["strategy.py"].splitlines(True)
    lines[line % len(lines)] = f"WEIGHT_{line} = {step}.25  # changed at step {step}\n"
    return Experiment(
        problem=PROBLEM.id,
        parent=None if parent is None else parent.id,
        strategy={"strategy.py": "".join(lines), "extra.py": extra},
        diff=f"-old line {line}\n+new line {line}\n",
        mutation_kind="perturb",
        description=f"step {step}",
        outcome=Outcome(status="ok", score=float(step), strategy_fuel=step),
        created_ms=step,
    )


def chain(length: int) -> list[Experiment]:
    made: list[Experiment] = []
    for step in range(length):
        made.append(child_of(made[-1] if made else None, step, step * 7))
    return made


def test_a_version_1_store_opens_upgrades_and_keeps_every_record(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    shutil.copy(FIXTURE, path)
    with RecordStore.open(path) as store:
        old = list(store.iter_records())  # decodes and re-hashes each one
        assert {r.id for r in old} == V1_IDS
        assert store.get_meta("iteration") == b"2"
        [child] = [r for r in old if isinstance(r, Experiment) and r.parent is not None]
        grandchild = child.model_copy(update={"parent": child.id, "created_ms": 9})
        assert store.add(grandchild)  # a new row in the new layout, its parent in the old
    with RecordStore.open(path) as store:
        assert {r.id for r in store.iter_records()} == V1_IDS | {grandchild.id}
        assert store.get(grandchild.id) == grandchild
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    layouts = {bytes(i).hex(): bool(files) for i, files in raw.execute(
        "SELECT id, refs IS NOT NULL FROM records").fetchall()}
    raw.close()
    # Upgraded: every experiment's files are in the blobs table now, old rows' too.
    others = {i for i in V1_IDS if i.startswith(("d97dd8d5", "105279cb"))}  # problem, verification
    assert layouts == {i: i not in others for i in (*V1_IDS, grandchild.id)}


def test_records_come_back_byte_for_byte(tmp_path: Path) -> None:
    records: list[Record] = [PROBLEM, *chain(40)]
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        assert store.add_many(records) == len(records)
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        stored = list(store.iter_records())
        assert [encode_record(r) for r in stored] == [encode_record(r) for r in records]
        assert store.load_dag().snapshot() == ResearchDag(records).snapshot()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(st.tuples(st.integers(0, 200), st.integers(-1, 30), st.text(max_size=40)),
                   min_size=1, max_size=30),
    batch=st.integers(1, 7),
)
def test_any_family_of_experiments_round_trips(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, int, str]], batch: int
) -> None:
    """Parents in the same batch or an earlier one, or absent; files shared, repeated, any
    text: every record reads back as the one stored, whatever the delta chains look like."""
    made: list[Experiment] = []
    for n, (line, parent_at, extra) in enumerate(steps):
        parent = made[parent_at % len(made)] if made and parent_at >= 0 else None
        made.append(child_of(parent, n, line, extra=extra))
    path = tmp_path_factory.mktemp("prop") / "records.sqlite"
    with RecordStore.open(path) as store:
        for start in range(0, len(made), batch):
            store.add_many(made[start : start + batch])
    with RecordStore.open(path) as store:  # a fresh cache: every file read from its deltas
        for record in made:
            assert store.get(record.id) == record
            assert encode_record(store.get(record.id)) == encode_record(record)  # type: ignore[arg-type]


def test_files_are_stored_once_and_as_small_deltas(tmp_path: Path) -> None:
    records = chain(200)
    path = tmp_path / "records.sqlite"
    with RecordStore.open(path) as store:
        store.add_many(records)
        store.add_many([r.model_copy(update={"description": "again"}) for r in records[:50]])
    raw = sqlite3.connect(path)
    blobs = raw.execute("SELECT count(*), max(depth), sum(length(data)) FROM blobs").fetchone()
    whole = raw.execute("SELECT count(*) FROM blobs WHERE base IS NULL").fetchone()[0]
    raw.close()
    assert blobs[0] == 200 + 1  # each strategy.py once, the unchanged extra.py once
    assert blobs[1] == MAX_DELTA_DEPTH - 1
    assert whole <= 1 + 200 // (MAX_DELTA_DEPTH - 1) + 1
    file_bytes = len(records[0].strategy["strategy.py"])
    assert blobs[2] < 200 * file_bytes / 10  # far below a copy per attempt


def damage(path: Path, sql: str) -> None:
    raw = sqlite3.connect(path)
    raw.execute(sql)
    raw.commit()
    raw.close()


@pytest.mark.parametrize("sql", [
    "UPDATE blobs SET data = X'789c0300000000' WHERE base IS NOT NULL",  # inflates to b""
    "UPDATE blobs SET data = X'00' WHERE base IS NOT NULL",  # not zlib
    "DELETE FROM blobs WHERE base IS NOT NULL",  # files gone
    "UPDATE records SET refs = X'c0' WHERE parent_of_test = 1",  # replaced below
])
def test_a_damaged_file_is_named_and_never_served(tmp_path: Path, sql: str) -> None:
    records = chain(5)
    path = tmp_path / "records.sqlite"
    with RecordStore.open(path) as store:
        store.add_many(records)
    victim = records[-1]
    if "parent_of_test" in sql:
        sql = f"UPDATE records SET refs = X'c0' WHERE id = X'{victim.id}'"
    damage(path, sql)
    with RecordStore.open(path) as store:
        with pytest.raises(StoreCorrupt, match=f"{path.name}.*{victim.id}.*does not decode"):
            store.get(victim.id)
        with pytest.raises(StoreCorrupt):
            list(store.iter_records())


def test_dropping_the_middle_of_a_lineage_keeps_the_files_the_rest_rest_on(
    tmp_path: Path,
) -> None:
    records = chain(40)  # each file a delta against its parent's: later ones rest on earlier
    path = tmp_path / "records.sqlite"
    with RecordStore.open(path) as store:
        store.add_many(records)
        assert store.drop(r.id for r in records[5:30]) == 25
        assert store.dropped_ids() == {r.id for r in records[5:30]}
        store.compact()
    with RecordStore.open(path) as store:
        assert list(store.iter_records()) == records[:5] + records[30:]
        again = chain(40)[5:30]  # dropped records can be stored again, files and all
        store.add_many(again)
        assert [store.get(r.id) for r in again] == again
