"""Issue 8 finding 8: a hostile package or strategy file gives a clear error and the right exit
code, never a host traceback, a hang or a read until memory runs out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.mutators.sites import collect_sites
from node.package_files import FileTooLarge, UnreadableFile, read_regular
from node.problem import PackageError, load_package
from research_dag import MAX_SOURCE

PROBE = Path(__file__).parent / "fixtures" / "probe"
DEEP = "def solve(d):\n    return {'x': " + "+".join(["1"] * 200_000) + "}\n"
# Ways to nest one expression inside the next, each within the parser's limits at a depth
# where the old site walk (two frames a level) overflowed the stack.
NESTINGS: dict[str, Callable[[int], str]] = {
    "unary": lambda depth: "-" * depth + "1",
    "not": lambda depth: "not " * depth + "x",
    "ifexp": lambda depth: "1 if x else " * depth + "1",
    "power": lambda depth: "**".join(["2"] * depth),
    "sum": lambda depth: "+".join(["1"] * depth),
    "lambda": lambda depth: "lambda: " * depth + "1",
}


def swarm(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SWARM_DATA_DIR=str(data_dir))
    # A hang is the bug for FIFOs: the timeout turns it into a failure instead of a stuck suite.
    return subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


@pytest.fixture
def package(tmp_path: Path) -> Path:
    target = tmp_path / "package"
    shutil.copytree(PROBE, target)
    return target


def _one_red_line(done: subprocess.CompletedProcess[str], code: int, *phrases: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "Error:" not in done.stderr
    assert done.stderr.startswith("error: ")
    for phrase in phrases:
        assert phrase in done.stderr


@pytest.mark.parametrize("command", [("eval",), ("run", "--iterations", "1"), ("pose", "--from")])
def test_a_deeply_chained_strategy_is_a_package_defect_in_every_command(
    package: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    (package / "strategy.py").write_text(DEEP)
    done = swarm(*command, str(package), data_dir=tmp_path / "data")
    _one_red_line(done, 2, "strategy.py is nested too deeply to parse")


@pytest.mark.parametrize("command", [("eval",), ("run", "--iterations", "1"), ("pose", "--from")])
def test_a_named_pipe_in_the_package_is_refused_without_waiting(
    package: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    os.mkfifo(package / "data" / "public" / "pipe")
    done = swarm(*command, str(package), data_dir=tmp_path / "data")
    _one_red_line(done, 2, "data/public/pipe is a named pipe (FIFO)")


def test_strategy_from_a_device_or_a_pipe_or_too_large_is_refused(
    tmp_path: Path,
) -> None:
    pipe = tmp_path / "pipe.py"
    os.mkfifo(pipe)
    large = tmp_path / "large.py"
    large.write_text("#" * (MAX_SOURCE + 1))
    for given_file, phrase in [
        ("/dev/zero", "/dev/zero is a character device"),
        (str(pipe), "pipe.py is a named pipe (FIFO)"),
        (str(large), f"larger than the limit of {MAX_SOURCE:,} bytes"),
    ]:
        done = swarm("eval", str(PROBE), "--strategy", given_file, data_dir=tmp_path)
        _one_red_line(done, 2, phrase)


def test_symlinked_files_and_directories_are_never_followed(package: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text("{}")
    (package / "data" / "public" / "linked").symlink_to(outside)
    with pytest.raises(PackageError) as raised:
        load_package(package)
    assert raised.value.defects == [
        "data/public/linked is a symbolic link; packages hold regular files only"
    ]
    (package / "data" / "public" / "linked").unlink()
    (package / "problem.toml").rename(tmp_path / "real.toml")
    (package / "problem.toml").symlink_to(tmp_path / "real.toml")
    with pytest.raises(PackageError, match=r"problem\.toml is a symbolic link"):
        load_package(package)


def test_a_deeply_nested_manifest_is_a_defect(package: Path) -> None:
    manifest = package / "problem.toml"
    manifest.write_text(manifest.read_text() + "\n[extra]\nx = " + "[" * 5000 + "]" * 5000)
    with pytest.raises(PackageError, match=r"problem\.toml: invalid TOML: nested too deeply"):
        load_package(package)


def test_reads_stop_one_byte_past_the_limit(tmp_path: Path) -> None:
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * 1000)
    assert read_regular(exact, 1000) == b"x" * 1000
    with pytest.raises(FileTooLarge, match="larger than the limit of 999 bytes"):
        read_regular(exact, 999)
    # Only size is FileTooLarge: the loader reports any other unreadable file as itself, not
    # as "the package holds more than 3 MiB".
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UnreadableFile, match="named pipe") as refused:
        read_regular(tmp_path / "pipe", 1000)
    assert not isinstance(refused.value, FileTooLarge)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(NESTINGS)), st.integers(min_value=1, max_value=5_000))
def test_the_offline_site_walk_never_overflows(kind: str, depth: int) -> None:
    text = "def solve(d):\n    return {'x': " + NESTINGS[kind](depth) + "}\n"
    sites = collect_sites("strategy.py", text)  # a parse failure or a too-deep tree: no sites
    if depth <= 50:
        assert sites or kind in ("not", "lambda")


def test_a_run_where_every_evaluation_crashed_exits_1(package: Path, tmp_path: Path) -> None:
    (package / "strategy.py").write_text(
        "SCALE = 0.5\n\ndef solve(public_dir):\n    raise RuntimeError('broken')\n"
    )
    for extra in ((), ("--json",)):
        done = swarm("run", str(package), "--iterations", "2", *extra, data_dir=tmp_path / "d")
        assert done.returncode == 1, done.stderr
        assert "error: no evaluation succeeded" in done.stderr
        assert "Traceback" not in done.stderr
