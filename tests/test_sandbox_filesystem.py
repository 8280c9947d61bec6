"""Scores are a function of the package alone, not of the host's filesystem (issue 8 finding
6): a directory's st_size passed through (4096 on ext4, 60 on tmpfs), so one strategy scored
1.0 on one honest machine and 0.4 on another."""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from research_dag import Problem
from sandbox import Evaluator, Runtime
from sandbox.filestat import FIXED_TIME_NS, REGULAR_FILE, normalise

ROOT = Path(__file__).resolve().parent.parent
OBSERVER = Path(__file__).parent / "fixtures" / "observer_strategy.py"
TMPFS = Path("/dev/shm")


@pytest.fixture
def tmpfs_dir() -> Iterator[Path]:
    if not (TMPFS.is_dir() and os.access(TMPFS, os.W_OK)):
        pytest.skip("no writable tmpfs at /dev/shm")
    directory = TMPFS / f"swarm-fs-{os.getpid()}"
    directory.mkdir()
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def disk_dir(tmp_path: Path, tmpfs_dir: Path) -> Iterator[Path]:
    """A directory on another filesystem than tmpfs: the temp dir, or else the checkout."""
    for base in (tmp_path, ROOT):
        if os.stat(base).st_dev != os.stat(tmpfs_dir).st_dev:
            directory = base / f".swarm-fs-{os.getpid()}"
            directory.mkdir()
            try:
                yield directory
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            return
    pytest.skip("no directory on a filesystem other than tmpfs")


def test_the_same_evaluation_scores_the_same_on_tmpfs_and_on_disk(
    runtime: Runtime, probe_problem: Problem, tmpfs_dir: Path, disk_dir: Path
) -> None:
    strategy = {"strategy.py": OBSERVER.read_text()}
    outcomes = []
    for workdir in (tmpfs_dir, disk_dir):
        with Evaluator(runtime, probe_problem, workdir) as evaluator:
            outcomes.append(evaluator.evaluate(strategy))
    on_tmpfs, on_disk = outcomes
    assert on_tmpfs.status == "ok", on_tmpfs.stderr_tail
    assert (on_tmpfs.score, on_tmpfs.strategy_fuel, on_tmpfs.evaluator_fuel) == (
        on_disk.score,
        on_disk.strategy_fuel,
        on_disk.evaluator_fuel,
    )
    assert on_tmpfs.stderr_tail == on_disk.stderr_tail  # the observations themselves


@given(
    dev=st.integers(0, 2**64 - 1),
    ino=st.integers(0, 2**64 - 1),
    filetype=st.integers(0, 7),
    nlink=st.integers(0, 2**64 - 1),
    size=st.integers(0, 2**64 - 1),
    times=st.tuples(*[st.integers(0, 2**64 - 1)] * 3),
)
def test_a_guest_sees_only_the_file_type_and_a_regular_file_size(
    dev: int, ino: int, filetype: int, nlink: int, size: int, times: tuple[int, int, int]
) -> None:
    raw = struct.pack("<QQB7xQQQQQ", dev, ino, filetype, nlink, size, *times)
    seen = struct.unpack("<QQB7xQQQQQ", normalise(raw))
    visible_size = size if filetype == REGULAR_FILE else 0
    assert seen == (0, 0, filetype, 1, visible_size, *(FIXED_TIME_NS,) * 3)
