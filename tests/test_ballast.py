"""A limit statfs does not show (a quota, another program filling the disk) no longer stops a
node: peers' records filled the file up to it and the node's next write of its own failed.
Now the node's own write releases a ballast file it holds beside the store and goes in, and
peers' records wait until the ballast can be held again. On a real small file system: a tmpfs
mounted for the test (root only; skipped elsewhere, with the reason)."""

from __future__ import annotations

import os
import random
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import node.store_ballast
import node.swarm_intake
from node.identity import Identity, sign_record
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.store import RecordStore, StoreFull
from node.store_ballast import Ballast
from node.swarm import NodeConfig, SwarmNode
from research_dag import Experiment, Outcome, Record
from tests.test_disk_reserve import status_shown
from tests.test_sync_budget import history

ME = Identity.from_seed(b"\x41" * 32)
BALLAST = 4 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 24 MiB file system."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root only): {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk is believed full for a minute, and a released ballast is tried again once a
    minute: at once here, so that each step below is one call."""
    monkeypatch.setattr(node.swarm_intake, "FULL_RETRY_S", 0.0)
    monkeypatch.setattr(node.store_ballast, "RETRY_S", 0.0)


def _no_evaluator(problem: object) -> None:
    raise AssertionError("this node researches nothing")


@asynccontextmanager
async def open_node(disk: Path, ballast: int) -> AsyncIterator[SwarmNode]:
    """A node whose store is on `disk`, with no reserve (a limit statfs does not show: peers
    may fill the disk) and a ballast of `ballast` bytes."""
    async with MemoryHub().open_node(ME.peer_id) as network:
        with RecordStore.open(disk / "records.sqlite", durable=False,
                              ballast_bytes=ballast) as store:
            yield SwarmNode(ME, network, store, _no_evaluator,  # type: ignore[arg-type]
                            OfflineMutator(), NodeConfig(problems=(), min_free_bytes=0))


def own(problem: str, n: int, rng: random.Random) -> Record:
    return sign_record(Experiment(problem=problem, strategy={"strategy.py": rng.randbytes(
        1_000).hex()}, outcome=Outcome(status="ok", score=float(n)), created_ms=10**9 + n), ME)


async def fill_with_peers_records(receiver: SwarmNode) -> int:
    """Peers' batches (600 KB each) until the disk refuses one; how many went in."""
    taken = 0
    for seed in range(100):
        batch = history(20, 30_000, seed=seed)
        got = await receiver.take(batch if seed == 0 else batch[1:])
        if not got:
            return taken
        taken += got
    raise AssertionError("a 24 MiB disk took 60 MB")


async def test_the_nodes_own_writes_go_on_when_peers_filled_the_disk(
    small_disk: Path, tmp_path: Path, no_waiting: None
) -> None:
    rng = random.Random(3)
    other_program = small_disk / "checkpoint.bin"  # another program's file, removed later
    other_program.write_bytes(bytes(10 << 20))
    async with open_node(small_disk, BALLAST) as receiver:
        ballast = receiver.store.ballast
        assert ballast is not None and ballast.held
        assert (small_disk / "records.sqlite.ballast").stat().st_blocks * 512 >= BALLAST
        assert await fill_with_peers_records(receiver) > 0
        assert receiver.stats.drops.counts["disk"] >= 1 and ballast.held
        problem = receiver.known_problems()[0].id
        # The node's own records: the disk is full, the ballast gives its space.
        mine: list[Record] = []
        while ballast.held and len(mine) < 5_000:  # what room a rolled-back batch left, first
            mine.append(own(problem, len(mine), rng))
            assert receiver.store.add(mine[-1])
        assert not ballast.held and ballast.released == 1
        for _ in range(1_000):  # ~2 MB more, into the ballast's 4 MiB
            mine.append(own(problem, len(mine), rng))
            assert receiver.store.add(mine[-1])
        assert not (small_disk / "records.sqlite.ballast").exists()
        assert receiver.store.held(r.id for r in mine) == {r.id for r in mine}
        # Peers' records wait: the ballast cannot be held again while the disk is full.
        later = history(5, 30_000, seed=500)[1:]
        assert await receiver.take(later) == 0 and not receiver.room
        # What `swarm status` shows an operator.
        assert ("the ballast was released for this node's own records"
                in status_shown(receiver, tmp_path))
        # Space comes back (the other program's file goes): the ballast first, then peers'.
        other_program.unlink()
        assert await receiver.take(later) == len(later)
        assert ballast.held and receiver.room
        assert (small_disk / "records.sqlite.ballast").stat().st_size == BALLAST


async def test_without_a_ballast_the_nodes_own_write_fails_clearly(
    small_disk: Path, no_waiting: None
) -> None:
    """What the ballast changes (and what every command but `swarm join` still does)."""
    async with open_node(small_disk, 0) as receiver:
        assert receiver.store.ballast is None
        assert await fill_with_peers_records(receiver) > 0
        problem = receiver.known_problems()[0].id
        rng = random.Random(4)
        with pytest.raises(StoreFull, match="the disk is full"):
            for n in range(5_000):
                receiver.store.add(own(problem, n, rng))


def test_a_ballast_is_kept_across_restarts_and_never_follows_a_link(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite.ballast"
    first = Ballast(path, 1 << 20)
    assert first.hold() and path.stat().st_size == 1 << 20
    inode = path.stat().st_ino
    assert Ballast(path, 1 << 20).hold() and path.stat().st_ino == inode  # whole: kept
    path.write_bytes(b"half")  # a crash while allocating
    again = Ballast(path, 1 << 20)
    assert again.hold() and path.stat().st_size == 1 << 20
    assert again.release() and not path.exists() and not again.release()


@pytest.mark.parametrize("taken", ["link", "directory", "fifo", "second link"])
def test_a_name_taken_by_something_else_is_left_alone_and_no_ballast_held(
    tmp_path: Path, taken: str
) -> None:
    """A red team (2026-12-08): a directory of the ballast's name raised IsADirectoryError out
    of the store's opening (a traceback, the database left open), a FIFO hung `swarm join`,
    and a link was deleted. Now the node leaves such a name alone and runs without a
    ballast (`swarm status` says why)."""
    path = tmp_path / "records.sqlite.ballast"
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    if taken == "link":
        os.symlink(target, path)
    elif taken == "directory":
        path.mkdir()
    elif taken == "fifo":
        os.mkfifo(path)
    else:
        os.link(target, path)
    with RecordStore.open(tmp_path / "records.sqlite", ballast_bytes=1 << 20) as store:
        ballast = store.ballast
        assert ballast is not None and not ballast.held and ballast.disabled
        assert not ballast.ready() and not ballast.release()
        assert store.add(own("a" * 64, 0, random.Random(0)))
    assert target.read_bytes() == b"keep me" and os.path.lexists(path)


def test_no_write_runs_while_the_ballast_is_allocated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ballast is held, checked and released under the store's lock. Before, an own write
    that failed while a peers' batch was allocating the ballast again (filling the disk for a
    moment) found nothing to release and stopped the node, and a peers' batch that had looked
    at the ballast before the lock was written into the space a release had just freed."""
    with RecordStore.open(tmp_path / "records.sqlite", ballast_bytes=1 << 20) as store:
        ballast = store.ballast
        assert ballast is not None and ballast.release()
        monkeypatch.setattr(node.store_ballast, "RETRY_S", 0.0)
        ballast._next_try = 0.0
        filling, go = threading.Event(), threading.Event()
        real_fill = node.store_ballast._fill

        def slow_fill(descriptor: int, size: int) -> None:
            filling.set()
            assert go.wait(10)
            real_fill(descriptor, size)

        monkeypatch.setattr(node.store_ballast, "_fill", slow_fill)
        rng = random.Random(5)
        problem = history(0, 0)[0]
        done: list[str] = []
        peers = threading.Thread(target=lambda: done.append(
            f"peers {store.add_many([problem], keep_free=0)}"))
        peers.start()
        assert filling.wait(10)  # the peers' batch is allocating the ballast
        mine = threading.Thread(target=lambda: done.append(
            f"own {store.add(own('a' * 64, 1, rng))}"))
        mine.start()
        mine.join(0.5)
        assert mine.is_alive() and done == []  # waits for the store's lock
        go.set()
        peers.join(10)
        mine.join(10)
        assert done == ["peers 1", "own True"] and ballast.held
