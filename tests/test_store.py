"""Tests of the SQLite record store on real files: durability under kill -9, damage, tampering."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import trio

from node.store import SCHEMA_VERSION, RecordStore, StoreCorrupt, StoreError
from node.store_table import INSERT_RECORDS
from research_dag import (
    Experiment,
    Metric,
    Outcome,
    Problem,
    Record,
    ResearchDag,
    Verification,
    encode_record,
)

REPO = Path(__file__).resolve().parents[1]
RECORD_ID = re.compile(r"^[0-9a-f]{64}$")

# Writes records forever, printing each id only after the store said it was committed.
WRITER = """
import sys
from pathlib import Path
from node.store import RecordStore
from research_dag import Experiment, Outcome

path, run = Path(sys.argv[1]), int(sys.argv[2])
def record(step):
    return Experiment(
        problem="0" * 64,
        strategy={"strategy.py": f"# run {run} step {step}"},
        outcome=Outcome(status="ok", score=float(step)),
        created_ms=step,
    )
with RecordStore.open(path) as store:
    step = 0
    while True:
        if step % 3 == 2:
            batch = [record(step), record(step + 1)]
            store.add_many(batch)
            step += 2
        else:
            batch = [record(step)]
            store.add(batch[0])
            step += 1
        for item in batch:
            print(item.id, flush=True)
"""


def make_problem(name: str = "p") -> Problem:
    return Problem(
        name=name,
        statement=f"optimise {name}",
        metric=Metric(name="score", direction="maximize"),
        mutable=["strategy.py"],
        files={"strategy.py": b"def solve(inputs):\n    return inputs\n"},
    )


def make_experiment(problem: Problem, tag: str, parent: Experiment | None = None) -> Experiment:
    return Experiment(
        problem=problem.id,
        parent=None if parent is None else parent.id,
        strategy={"strategy.py": f"# {tag}\n"},
        outcome=Outcome(status="ok", score=float(len(tag))),
        created_ms=len(tag),
    )


def some_records() -> list[Record]:
    p, q = make_problem("p"), make_problem("q")
    base = make_experiment(p, "base")
    child = make_experiment(p, "child", parent=base)
    other = make_experiment(q, "other")
    check = Verification(experiment=child.id, outcome=child.outcome, match=True)
    # Children before parents: the store keeps arrival order, the DAG does not care.
    return [child, check, base, p, q, other]


def test_round_trip_filters_and_dag(tmp_path: Path) -> None:
    records = some_records()
    path = tmp_path / "data" / "records.sqlite"  # parent directory does not exist yet
    with RecordStore.open(path) as store:
        assert store.add_many(records) == len(records)
        assert store.count() == len(records)
        assert store.ids() == {r.id for r in records}
        assert list(store.iter_records()) == records
        assert store.get(records[0].id) == records[0]
        assert store.get("f" * 64) is None
        assert records[1].id in store and "f" * 64 not in store and 7 not in store
        p = records[3]
        assert list(store.iter_records(kind="problem")) == [p, records[4]]
        assert list(store.iter_records(problem=p.id)) == [records[0], records[2], p]
        assert list(store.iter_records(kind="experiment", problem=p.id)) == records[0:3:2]
        assert store.load_dag().snapshot() == ResearchDag(records).snapshot()


def test_add_is_idempotent(tmp_path: Path) -> None:
    records = some_records()
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        assert store.add(records[0]) is True
        assert store.add(records[0]) is False
        assert store.add_many([*records, *records]) == len(records) - 1
        assert store.add_many([]) == 0
        assert store.count() == len(records)


def test_iteration_pages_through_many_records(tmp_path: Path) -> None:
    p = make_problem()
    records = [make_experiment(p, f"e{i}") for i in range(600)]  # more than two pages
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        store.add_many(records)
        assert list(store.iter_records(kind="experiment")) == records


def test_reopen_keeps_records_meta_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    records = some_records()
    with RecordStore.open(path) as store:
        store.add_many(records)
        assert store.get_meta("rng") is None
        store.set_meta("rng", b"\x00state-1")
        store.set_meta("rng", b"\x00state-2")
        store.set_meta("iteration", b"7")
    with RecordStore.open(path) as store:
        assert list(store.iter_records()) == records
        assert store.get_meta("rng") == b"\x00state-2"
        assert store.get_meta("iteration") == b"7"
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_closed_store_raises(tmp_path: Path) -> None:
    store = RecordStore.open(tmp_path / "records.sqlite")
    store.close()
    store.close()  # closing twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.ids()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    RecordStore.open(path).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StoreError, match="schema version 99"):
        RecordStore.open(path)


def test_committed_records_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    printed: list[str] = []
    for run, kill_after in enumerate([1, 4, 9, 17, 30]):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(run)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        watchdog = threading.Timer(20.0, writer.kill)  # a hung writer must not hang the suite
        watchdog.start()
        try:
            assert writer.stdout is not None and writer.stderr is not None
            for _ in range(kill_after):
                line = writer.stdout.readline()
                assert line, f"writer died early: {writer.stderr.read()}"
                printed.append(line.strip())
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            # Ids printed between our last read and the kill were committed too.
            rest = writer.stdout.read().splitlines()
            printed.extend(line for line in rest if RECORD_ID.match(line))
            writer.stdout.close()
            writer.stderr.close()
        finally:
            watchdog.cancel()
        assert writer.returncode == -signal.SIGKILL
    with RecordStore.open(path) as store:
        stored = list(store.iter_records())  # decodes and re-hashes every record
        assert set(printed) <= {record.id for record in stored}
        assert len(stored) == store.count() >= len(printed)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    path.write_bytes(b"this is not sqlite\n" * 500)
    with pytest.raises(StoreError, match=r"records\.sqlite.*move it aside"):
        RecordStore.open(path)


@pytest.mark.parametrize("offset", [0, 8192])  # the header, then a b-tree page
def test_garbage_over_part_of_the_database(tmp_path: Path, offset: int) -> None:
    path = tmp_path / "records.sqlite"
    p = make_problem()
    with RecordStore.open(path) as store:
        store.add_many([make_experiment(p, f"e{i}" * 40) for i in range(200)])
    data = bytearray(path.read_bytes())
    data[offset : offset + 4096] = bytes(range(256)) * 16
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as caught, RecordStore.open(path) as store:
        list(store.iter_records())
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def tamper(path: Path, record_id: str, body: bytes) -> None:
    """Replace a row's body by `body` as full record bytes (layout byte 0)."""
    raw = sqlite3.connect(path)
    raw.execute("UPDATE records SET body = ? WHERE id = ?", (b"\x00" + body,
                                                            bytes.fromhex(record_id)))
    raw.commit()
    raw.close()


def test_an_altered_body_is_named(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    records = some_records()
    victim, impostor = records[0], records[2]
    with RecordStore.open(path) as store:
        store.add_many(records)
    tamper(path, victim.id, encode_record(impostor))
    with RecordStore.open(path) as store:
        with pytest.raises(StoreCorrupt, match=f"{path.name}.*{victim.id}"):
            store.get(victim.id)
        with pytest.raises(StoreCorrupt, match=victim.id):
            list(store.iter_records())
        with pytest.raises(StoreCorrupt):
            store.load_dag()
        assert store.get(records[1].id) == records[1]  # the rest stays readable


def test_an_undecodable_body_is_named(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    records = some_records()
    with RecordStore.open(path) as store:
        store.add_many(records)
    tamper(path, records[3].id, b"\xc1 not msgpack")
    with (
        RecordStore.open(path) as store,
        pytest.raises(StoreCorrupt, match=f"{records[3].id}.*does not decode"),
    ):
        store.get(records[3].id)


async def test_worker_threads_share_one_store(tmp_path: Path) -> None:
    p = make_problem()
    with RecordStore.open(tmp_path / "records.sqlite") as store:

        async def write(worker: int) -> None:
            for i in range(20):
                record = make_experiment(p, f"w{worker}-{i}")
                assert await trio.to_thread.run_sync(store.add, record)
                await trio.to_thread.run_sync(store.set_meta, f"w{worker}", bytes([i]))

        async with trio.open_nursery() as nursery:
            for worker in range(4):
                nursery.start_soon(write, worker)
        assert store.count() == 80
        assert [store.get_meta(f"w{w}") for w in range(4)] == [bytes([19])] * 4


def test_a_batch_larger_than_one_statement_counts_only_new_records(tmp_path: Path) -> None:
    p = make_problem()
    records = [make_experiment(p, f"e{i}") for i in range(2 * INSERT_RECORDS + 7)]
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        assert store.add_many(records[::3]) == len(records[::3])
        assert store.add_many(records) == len(records) - len(records[::3])
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        assert {r.id for r in store.iter_records()} == {r.id for r in records}


def test_a_copy_with_another_signature_is_stored_with_its_own_bytes(tmp_path: Path) -> None:
    # encode_record is cached per instance: a copy with a new signature must not reuse it.
    original = make_experiment(make_problem(), "signed")
    encode_record(original)
    resigned = original.model_copy(update={"signature": b"\x01" * 64})
    assert encode_record(resigned) != encode_record(original)
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        store.add(resigned)
        stored = store.get(resigned.id)
    assert stored is not None and stored.signature == b"\x01" * 64


def test_names_reloaded_after_a_rollback_never_vanish_for_a_reader(tmp_path: Path) -> None:
    """Threads read the store's name cache without its lock (a derivation's queries, the
    dashboard's); after a rolled-back write it is reloaded. Emptied in place, then loaded, a
    reader in between got KeyError ("no name N"); built aside and swapped in, never."""
    from node.store_bodies import Caches
    from node.store_schema import Names

    with RecordStore.open(tmp_path / "s.sqlite") as store:
        store.add(make_problem())
        conn = sqlite3.connect(tmp_path / "s.sqlite")
        names = Names()
        names.load(conn)
        numbers = sorted(names._names)
        assert numbers
        missing: list[int] = []
        done = threading.Event()

        def read() -> None:
            while not done.is_set():
                for number in numbers:
                    try:
                        names.name(number)
                    except KeyError:
                        missing.append(number)

        reader = threading.Thread(target=read)
        previous = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        reader.start()
        try:
            caches = Caches(names=names)
            for _ in range(300):
                caches.clear(conn)  # what a rolled-back write does
        finally:
            done.set()
            reader.join()
            sys.setswitchinterval(previous)
            conn.close()
        assert missing == []
