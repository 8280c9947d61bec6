"""What a new user meets following README.md: `swarm init`, `run`, `status` and an unconfigured
`--eval-model`, each message saying what to do about the command actually typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SKILL = Path(__file__).resolve().parent.parent / "examples" / "skill_landing_copy"
UNSET = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
         "SWARM_LLM_MODEL")


def swarm(*args: str, data_dir: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**clean, "SWARM_DATA_DIR": str(data_dir), **(env or {})})


def test_an_unconfigured_eval_model_says_what_to_set_for_it(tmp_path: Path) -> None:
    # The clients' messages name the LLM mutator (and the offline mutator as the way out):
    # said of --eval-model, the OpenAI one read "... to use the openai mutator: set it, ...".
    cases = [
        ({}, "anthropic", "ANTHROPIC_API_KEY is not set: set it, or use --eval-model standin"),
        ({}, "openai", "or OPENAI_API_KEY to use --eval-model openai, or use --eval-model "
         "standin"),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, "openai",
         "set SWARM_LLM_MODEL (or --model) to the model to ask, or use --eval-model standin"),
    ]
    for env, kind, said in cases:
        done = swarm("eval", str(SKILL), "--eval-model", kind, data_dir=tmp_path, env=env)
        assert done.returncode == 2, done.stderr
        text = " ".join(done.stderr.split())  # unwrapped
        assert said in text, text
        assert "mutator" not in text
        assert kind == "anthropic" or "set it" not in text  # it says what to set already


def test_status_counts_a_solo_runs_experiments_as_this_nodes(tmp_path: Path) -> None:
    package, data = tmp_path / "mypkg", tmp_path / "data"
    assert swarm("init", str(package), data_dir=data).returncode == 0
    ran = swarm("run", str(package), "--iterations", "2", data_dir=data)
    assert ran.returncode == 0, ran.stderr
    done = swarm("status", "--json", data_dir=data)  # makes the node's identity: still ours
    assert done.returncode == 0, done.stderr
    [problem] = json.loads(done.stdout)["problems"]
    assert problem["experiments"] == 3  # the baseline and two attempts
    assert problem["mine"] == 3  # was 0: a solo run signs nothing ("local")


def test_simulate_runs_its_bundled_example_from_any_directory(tmp_path: Path) -> None:
    # Without --problem it looked for examples/landing_copy under the current directory: from
    # anywhere but the checkout, "examples/landing_copy is not a valid experiment package".
    done = swarm("simulate", "--nodes", "1", "--rounds", "1", "--json", data_dir=tmp_path,
                 cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["config"]["problem"]["name"] == "landing_copy"
    [row] = report["knowledge"]["problems"]  # every problem's verified best, as a node sees it
    assert row["name"] == "landing_copy" and row["best"] is not None


def test_a_simulation_kept_with_data_dir_is_browsed_with_swarm_dag(tmp_path: Path) -> None:
    # The DAG a simulation grew could only be seen in its HTML report: `swarm dag` had nothing
    # to read. Node 0's records and identity are kept in a new directory on request; a
    # directory that holds anything is refused before the run and left as it was.
    probe = Path(__file__).resolve().parent / "fixtures" / "probe"
    kept, home = tmp_path / "kept", tmp_path / "home"
    done = swarm("simulate", "--nodes", "2", "--rounds", "2", "--problem", str(probe),
                 "--data-dir", str(kept), data_dir=home)
    assert done.returncode == 0, done.stderr
    assert f"swarm dag --data-dir {kept}" in " ".join(done.stdout.split())
    assert not home.exists()  # the user's own store is not touched
    assert (kept / "identity.key").stat().st_mode & 0o777 == 0o600  # from its first byte
    summary = swarm("dag", "--json", "--data-dir", str(kept), data_dir=home)
    assert summary.returncode == 0, summary.stderr
    [problem] = json.loads(summary.stdout)["problems"]
    assert problem["name"] == "probe" and problem["records"]["experiment"] >= 4  # 2 nodes, 2 rounds
    tree = swarm("dag", "tree", problem["id"][:8], "--data-dir", str(kept), data_dir=home)
    assert tree.returncode == 0 and "baseline" in tree.stdout, tree.stderr
    before = sorted(p.name for p in kept.iterdir())
    again = swarm("simulate", "--nodes", "1", "--rounds", "1", "--problem", str(probe),
                  "--data-dir", str(kept), data_dir=home)
    assert again.returncode == 2 and "give a new or empty directory" in again.stderr
    assert sorted(p.name for p in kept.iterdir()) == before
