"""Peers cannot fill a node's disk: records are free to sign, by identities free to make, so
below a reserve of free space (`NodeConfig.min_free_bytes`) a node stores none of theirs, and a
disk that fills anyway (SQLite's SQLITE_FULL, made real here with a page limit on a real file)
drops the batch whole instead of stopping the node. Both are counted (drop reason "disk"), the
node's own writes keep the reserve, and the records come by sync once there is room."""

from __future__ import annotations

import dataclasses
import json
import random
import resource
import signal
import tempfile
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import node.swarm_intake
from node.cli.status import NODE_STATUS_FILE
from node.cli.swarm import node_counters
from node.identity import Identity, sign_record
from node.net.memory import MemoryHub
from node.store import RecordStore, StoreFull
from node.swarm import SwarmNode
from research_dag import Experiment, Outcome, Record
from tests.test_sync_budget import SERVER, history, open_node
from tests.web_run import swarm

RECEIVER = Identity.from_seed(b"\x31" * 32)


def status_shown(node: SwarmNode, root: Path) -> str:
    """What `swarm status` prints of the counters `swarm join` would write for `node`."""
    data = root / "data"
    data.mkdir()
    (data / NODE_STATUS_FILE).write_text(json.dumps(node_counters(node)))
    shown = swarm("status", "--data-dir", str(data))
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def at_reserve(node: SwarmNode, reserve: int) -> None:
    node.config = dataclasses.replace(node.config, min_free_bytes=reserve)


def page_limit(store: RecordStore, spare_pages: int) -> None:
    """Let the store's file grow by `spare_pages` pages at most (SQLITE_FULL past them)."""
    with store.locked() as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")


def experiment(problem: str, n: int, chars: int, rng: random.Random,
               author: Identity = RECEIVER) -> Record:
    return sign_record(Experiment(problem=problem, strategy={"strategy.py": rng.randbytes(
        chars // 2).hex()}, outcome=Outcome(status="ok", score=float(n)),
        created_ms=10**9 + n), author)


async def test_peers_records_wait_while_the_disk_is_at_the_reserve_and_come_with_room(
    tmp_path: Path,
) -> None:
    records = history(20, 4_000, seed=5)
    hub = MemoryHub()
    async with open_node(hub, SERVER, tmp_path, records) as server, \
            open_node(hub, RECEIVER, tmp_path) as receiver:
        await receiver.network.connect(f"/memory/{server.me}")
        free = receiver.store.free_bytes()
        at_reserve(receiver, free + 2**40)  # a reserve above what the disk has free
        assert await receiver.sync.sync_with(server.me) == 0
        assert not receiver.room and len(receiver.dag) == 0
        # Nothing it cannot store is asked for: the server answered the summary only.
        assert server.sync.budget.by_reason()["served"] == 1
        # Gossip's records (which arrive unasked) are dropped and counted, one per record.
        assert await receiver.take(records[:5]) == 0
        assert receiver.stats.drops.counts["disk"] == 5 and receiver.dropped == set()
        # The node's own records still go in: the reserve is theirs.
        assert receiver.store.add(experiment(records[0].id, 1, 100, random.Random(1)))
        # What `swarm join` writes for `swarm status`, and what that shows an operator.
        shown = status_shown(receiver, tmp_path)
        assert "disk     at this node's reserve of free space" in shown
        assert "disk 5" in shown  # the drops line
        at_reserve(receiver, 0)
        assert await receiver.sync.sync_with(server.me) == len(records)
        assert receiver.room and {r.id for r in records} <= receiver.dag.ids()


async def test_a_full_disk_drops_the_peers_batch_whole_and_the_node_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = history(40, 60_000, seed=6)  # ~2.4 MB: far past the pages left
    hub = MemoryHub()
    async with open_node(hub, RECEIVER, tmp_path) as receiver:
        at_reserve(receiver, 0)
        page_limit(receiver.store, 8)
        held = receiver.store.count()
        assert await receiver.take(records) == 0  # SQLITE_FULL: rolled back, not raised
        assert receiver.stats.drops.counts["disk"] == len(records) and not receiver.room
        assert receiver.store.count() == held and len(receiver.dag) == 0
        with pytest.raises(StoreFull, match="disk is full"):  # our own writes say it clearly
            receiver.store.add_many(records)
        # Room again (the limit lifted); a full disk is believed full for FULL_RETRY_S.
        page_limit(receiver.store, 100_000)
        assert not receiver.has_room()
        monkeypatch.setattr(node.swarm_intake, "FULL_RETRY_S", 0.0)
        receiver._full_until = 0.0
        assert await receiver.take(records) == len(records)
        assert receiver.room and receiver.store.count() == held + len(records)


BATCHES = st.lists(st.tuples(st.integers(1, 12), st.integers(100, 30_000)), min_size=1,
                   max_size=6)


@settings(max_examples=20, deadline=None)
@given(batches=BATCHES, spare=st.integers(0, 64), seed=st.integers(0, 2**16))
def test_no_batches_of_peers_records_on_a_filling_disk_stop_the_node_or_split_a_batch(
    batches: list[tuple[int, int]], spare: int, seed: int
) -> None:
    """Whatever the batches and however few pages are left: `take` never raises, and every
    batch is stored whole or not at all (the DAG and the store agree)."""
    rng = random.Random(seed)
    problem = history(0, 0)[0]

    async def main() -> None:
        with tempfile.TemporaryDirectory() as root:
            async with open_node(MemoryHub(), RECEIVER, Path(root), [problem]) as receiver:
                at_reserve(receiver, 0)
                node.swarm_intake.FULL_RETRY_S = 0.0
                page_limit(receiver.store, spare)
                made = 0
                for count, size in batches:  # each record by a fresh identity
                    batch = [experiment(problem.id, made + n, size, rng,
                                        Identity.from_seed(rng.randbytes(32)))
                             for n in range(count)]
                    made += count
                    taken = await receiver.take(batch)
                    ids = {record.id for record in batch}
                    stored = receiver.store.held(ids)
                    assert stored in (set(), ids) and taken == len(stored)
                    assert (ids <= receiver.dag.ids()) == bool(stored)
                    receiver._full_until = 0.0

    retry = node.swarm_intake.FULL_RETRY_S
    try:
        trio.run(main)
    finally:
        node.swarm_intake.FULL_RETRY_S = retry


async def test_a_write_the_file_system_refuses_drops_the_peers_batch_not_the_node(
    tmp_path: Path,
) -> None:
    """A quota (EDQUOT) or a file size limit (EFBIG, made real here with RLIMIT_FSIZE) is not
    ENOSPC: SQLite says SQLITE_IOERR_WRITE, and a full disk met while the WAL's index grows
    says SQLITE_IOERR_SHMSIZE. Each was a plain StoreError that left sync and stopped the
    node; now, like SQLITE_FULL, it drops the batch and the node goes on."""
    records = history(60, 100_000, seed=12)  # ~6 MB, past the limit below
    hub = MemoryHub()
    async with open_node(hub, SERVER, tmp_path, records) as server, \
            open_node(hub, RECEIVER, tmp_path) as receiver:
        at_reserve(receiver, 0)  # statfs shows plenty: the limit is invisible to it
        await receiver.network.connect(f"/memory/{server.me}")
        old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, resource.RLIM_INFINITY))
        try:
            with trio.fail_after(60):
                taken = await receiver.sync.sync_with(server.me)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE,
                               (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            signal.signal(signal.SIGXFSZ, old)
        assert receiver.stats.drops.counts["disk"] >= 1 and not receiver.room
        assert receiver.store.count() == taken  # what went in went in whole


async def test_a_take_cancelled_after_its_commit_is_still_indexed(tmp_path: Path) -> None:
    """Sync's 30 s limit can land between the store's commit (in a worker thread) and the
    DAG's update: the records were stored and counted as held but never indexed, so a
    stored problem never became known and taking the records again took none."""
    records = history(30, 140_000, seed=9)  # ~4 MB: the store's thread takes a while
    async with open_node(MemoryHub(), RECEIVER, tmp_path) as receiver:
        before = receiver.store.count()
        cancelled = trio.CancelScope()

        async def take() -> None:
            with cancelled:
                await receiver.take(records)

        async def cancel_once_committed() -> None:
            while receiver.store.count() == before:  # committed in the worker thread
                await trio.sleep(0)
            cancelled.cancel()  # as sync's fail_after would, at that moment

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(take)
                nursery.start_soon(cancel_once_committed)
        assert receiver.store.count() == before + len(records)
        assert [p.id for p in receiver.known_problems()] == [records[0].id]
        assert {r.id for r in records} <= receiver.dag.ids()
        assert receiver.stats.received == len(records)


async def test_a_pass_asks_for_nothing_more_once_the_disk_is_full(tmp_path: Path) -> None:
    records = history(5000, 1_500, seed=11)  # five fetches of 1,024 ids
    hub = MemoryHub()
    async with open_node(hub, SERVER, tmp_path, records) as server, \
            open_node(hub, RECEIVER, tmp_path) as receiver:
        at_reserve(receiver, 0)
        page_limit(receiver.store, 50)  # full at the first fetch
        await receiver.network.connect(f"/memory/{server.me}")
        with trio.fail_after(60):
            assert await receiver.sync.sync_with(server.me) == 0
        assert not receiver.room
        # A summary and one fetch: the four others would have been fetched, checked, dropped.
        assert server.sync.budget.by_reason()["served"] == 2
        assert receiver.stats.drops.counts["disk"] == 1024


async def test_batches_at_once_cannot_all_pass_one_look_at_the_reserve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four intakes at once (a drain per topic, and sync) each looked at the free space before
    taking the store's lock, so all four passed one look and wrote the disk below the reserve.
    A small disk here: its free space is a fixed capacity less the store's files."""
    hub = MemoryHub()
    async with open_node(hub, RECEIVER, tmp_path) as receiver:
        store = receiver.store
        reserve = 8 << 20

        def used() -> int:
            return sum(f.stat().st_size for f in tmp_path.glob(store.path.name + "*"))

        capacity = used() + reserve + (3 << 20)  # room for about one 1.2 MB batch, twice over
        monkeypatch.setattr(store, "free_bytes", lambda: capacity - used())
        at_reserve(receiver, reserve)
        batches = [history(8, 150_000, seed=20 + n)[1:] for n in range(4)]
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for batch in batches:
                    nursery.start_soon(receiver.take, batch)
        assert store.free_bytes() >= reserve
        stored = [bool(store.held(r.id for r in batch)) for batch in batches]
        assert 1 <= sum(stored) < len(batches)
        assert receiver.stats.drops.counts["disk"] == 8 * (len(batches) - sum(stored))
