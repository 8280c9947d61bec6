"""`swarm init --template skill` (issue 13): SKILL.md, 10-20 cases, 3-6 binary checks and a
problem.toml with a runner and [model], which load as a valid package; unknown templates are
a usage error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from node.problem import load_package


def swarm(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWARM_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_skill_template_scaffolds_a_valid_text_package(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    done = swarm("init", "--template", "skill", str(target), data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr
    assert "SKILL.md" in done.stdout
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
