"""`swarm init --template skill` (issue 13): SKILL.md, 10-20 cases, 3-6 binary checks and a
problem.toml with a runner and [model], which load as a valid package, pass every publication
check, evaluate per case and climb offline through the noise gate; unknown templates are a
usage error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.problem import load_package
from node.publish.validate import validate_problem
from sandbox import Runtime


def swarm(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWARM_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One `swarm init --template skill` for the module: the directory and what it printed."""
    root = tmp_path_factory.mktemp("skill")
    done = swarm("init", "--template", "skill", str(root / "mine"), data_dir=root / "d")
    assert done.returncode == 0, done.stderr
    return root / "mine", done.stdout


def test_the_skill_template_scaffolds_a_valid_text_package(scaffold: tuple[Path, str]) -> None:
    target, printed = scaffold
    assert "SKILL.md" in printed
    problem = load_package(target)
    assert problem.mutable == ["SKILL.md"] and problem.runner == "run.py"
    assert problem.model is not None
    assert 3 <= len(problem.checklist) <= 6
    cases = json.loads(problem.files["data/public/cases.json"])
    assert 10 <= len(cases) <= 20


def test_an_unknown_template_is_a_usage_error(tmp_path: Path) -> None:
    done = swarm("init", "--template", "nope[red]", str(tmp_path / "x"), data_dir=tmp_path / "d")
    assert done.returncode == 2
    assert "no template 'nope" in done.stderr and "skill" in done.stderr
    assert not (tmp_path / "x").exists()


def test_the_scaffold_passes_every_publication_check_and_evaluates_per_case(
    scaffold: tuple[Path, str], runtime: Runtime, tmp_path: Path
) -> None:
    target, _ = scaffold
    validation = validate_problem(runtime, load_package(target))
    assert validation.ok, validation.failures
    done = swarm("eval", str(target), data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr
    assert "cases (12):" in done.stdout
    assert "✓ names_product" in done.stdout and "✗ short" in done.stdout
    assert "FJORD RAIN JACKET" in done.stdout  # the first case's output (the naive model shouts)
    assert "case:01" not in done.stdout  # shown as a case, not as a raw detail


def test_the_scaffold_climbs_offline_and_the_log_shows_the_gate(
    scaffold: tuple[Path, str], tmp_path: Path
) -> None:
    target, _ = scaffold
    done = swarm("run", str(target), "--iterations", "40", data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr
    assert "stopped: target reached" in " ".join(done.stdout.split())
    log = json.loads(swarm("log", str(target), "--json", data_dir=tmp_path / "d").stdout)
    kept = [row for row in log if row["status"] == "keep"]
    assert kept and all(row["gate"].endswith("kept") for row in kept)
    assert log[0]["score"] == 0.25 and kept[-1]["score"] >= 0.95
