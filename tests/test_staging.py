"""Staging on its own cannot write outside its root (issue 8 finding 1, defence in depth): hostile
names given straight to the evaluator, bypassing the record schema, create nothing elsewhere and
never raise; symlinks planted in the tree are never followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from research_dag import Problem
from sandbox import Evaluator, Runtime
from sandbox.staging import StagingError, path_segments, stage_file

MTIME = 1_704_067_200
# Fixtures shared across examples hold no per-example state (each example makes its own dirs).
SHARED_FIXTURE = [HealthCheck.function_scoped_fixture]
SOURCE = "def solve(public_dir):\n    return {'x': 1}\n"
# The pieces attacks are made of: traversal, absolute roots, separators of other systems,
# NUL and controls, home and drive names, and plain names so some paths are valid.
PIECES = ["..", ".", "", "/", "\\", "\x00", "\n", "~", "C:", "tmp", "x", "strategy.py", "a.py"]
hostile_paths = st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("/".join),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("".join),
    st.text(max_size=40),
)


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def deep_workdir(tmp_path: Path) -> Path:
    # Deep enough that any `..` walk from a staged directory still lands inside tmp_path.
    workdir = tmp_path / "a" / "b" / "c" / "d" / "e" / "f"
    workdir.mkdir(parents=True)
    return workdir


def test_the_original_attack_writes_nothing(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    """A claim whose strategy keys climb out of the run directory or name absolute paths."""
    workdir = deep_workdir(tmp_path)
    target = tmp_path / "bashrc"
    before = tree(tmp_path)
    strategy = {"../../../../../../../../bashrc": "pwned", str(target): "pwned",
                "strategy.py": SOURCE}
    with Evaluator(runtime, probe_problem, workdir) as evaluator:
        outcome = evaluator.evaluate(strategy)
        # The same keys as the problem's own mutable files: staging alone must refuse them.
        hostile = probe_problem.model_copy(update={"mutable": list(strategy)})
        with Evaluator(runtime, hostile, workdir) as unchecked:
            staged = unchecked.evaluate(strategy)
    assert (outcome.status, outcome.score) == ("invalid", None)
    assert outcome.details == {"failed_phase": 0}
    assert "are not the problem's mutable files" in outcome.stderr_tail
    assert (staged.status, staged.details) == ("invalid", {"failed_phase": 0})
    assert "cannot be staged" in staged.stderr_tail
    assert not target.exists()
    assert tree(tmp_path) == before



@settings(max_examples=60, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(path=hostile_paths)
def test_hostile_strategy_keys_create_nothing_outside_and_never_raise(
    runtime: Runtime, probe_problem: Problem, tmp_path_factory: pytest.TempPathFactory, path: str
) -> None:
    base = tmp_path_factory.mktemp("hostile")
    workdir = deep_workdir(base)
    before = tree(base)
    # The problem's mutable names the hostile path too (as a schema bypass would): the key
    # check passes and staging is the only guard.
    problem = probe_problem.model_copy(update={"mutable": [path]})
    with Evaluator(runtime, problem, workdir) as evaluator:
        matching = evaluator.evaluate({path: SOURCE})
        refused = evaluator.evaluate({path: SOURCE, "zz_other.py": SOURCE})
    assert (refused.status, refused.details) == ("invalid", {"failed_phase": 0})
    try:
        path_segments(path)
    except StagingError:
        assert (matching.status, matching.details) == ("invalid", {"failed_phase": 0})
    assert tree(base) == before


@settings(max_examples=200, deadline=None)
@given(path=hostile_paths)
def test_stage_file_stays_inside_its_root(
    tmp_path_factory: pytest.TempPathFactory, path: str
) -> None:
    base = tmp_path_factory.mktemp("stage")
    root = base / "root"
    root.mkdir()
    try:
        stage_file(root, path, b"x", MTIME)
    except StagingError:
        assert tree(base) == {"root"}
    else:
        written = root.joinpath(*path.split("/"))
        assert written.read_bytes() == b"x" and written.resolve().is_relative_to(root)
        assert all(name == "root" or name.startswith("root/") for name in tree(base))


def test_planted_symlinks_are_never_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "dir").symlink_to(outside, target_is_directory=True)
    (root / "file").symlink_to(outside / "victim")
    for path in ("dir/x", "file", "dir/deeper/x"):
        with pytest.raises(StagingError):
            stage_file(root, path, b"x", MTIME)
    assert list(outside.iterdir()) == []
    assert not (outside / "victim").exists()


def test_staged_files_have_the_fixed_mtime(tmp_path: Path) -> None:
    stage_file(tmp_path, "data/x.csv", b"1,2\n", MTIME)
    assert os.stat(tmp_path / "data" / "x.csv").st_mtime == MTIME
    with pytest.raises(StagingError, match="File exists"):
        stage_file(tmp_path, "data/x.csv", b"again", MTIME)


def test_hostile_problem_files_are_refused_before_anything_runs(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    workdir = deep_workdir(tmp_path)
    before = tree(tmp_path)
    for path in ("../../../../../../../escaped", "data/public/../../../../../../../../escaped",
                 str(tmp_path / "absolute")):
        files = {**probe_problem.files, path: b"x"}
        with pytest.raises(StagingError):
            Evaluator(runtime, probe_problem.model_copy(update={"files": files}), workdir)
    assert tree(tmp_path) == before
