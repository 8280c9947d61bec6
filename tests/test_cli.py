"""The `swarm` command as a user runs it: real processes, real sandbox, real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from research_dag import Problem
from sandbox import Evaluator

PROBE = Path(__file__).parent / "fixtures" / "probe"


def swarm(*args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if data_dir is not None:
        env["SWARM_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_eval_json_is_identical_in_two_processes_and_in_this_one(
    probe: Evaluator, probe_problem: Problem
) -> None:
    # Files are staged afresh each time (new inodes, new mtimes): none of that may show.
    runs = [swarm("eval", str(PROBE), "--json") for _ in range(4)]
    first = runs[0]
    assert first.returncode == 0, first.stderr
    assert {run.stdout for run in runs} == {first.stdout}
    report = json.loads(first.stdout)
    here = probe.evaluate({"strategy.py": (PROBE / "strategy.py").read_text()})
    assert (report["status"], report["score"]) == ("ok", 1.0)
    assert (report["strategy_fuel"], report["evaluator_fuel"]) == (
        here.strategy_fuel,
        here.evaluator_fuel,
    )
    assert report["items"] == {"positive": True, "matches_label": True}


def test_eval_of_another_strategy_file_shows_stderr(tmp_path: Path) -> None:
    strategy = tmp_path / "mine.py"
    strategy.write_text("def solve(d):\n    print('debugging here')\n    return {'x': 'no'}\n")
    done = swarm("eval", str(PROBE), "--strategy", str(strategy))
    assert done.returncode == 1
    assert "status: invalid" in done.stdout and "debugging here" in done.stdout


def test_run_json_summary_then_log_and_tsv(tmp_path: Path) -> None:
    done = swarm("run", str(PROBE), "--iterations", "12", "--json", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["baseline"] == 1.0 and summary["best"] > 1.0
    assert summary["direction"] == "maximize" and summary["target"] == 10.0
    assert summary["iterations"] == len(summary["history"]) <= 12
    assert summary["stop_reason"] in ("iterations", "target_reached")
    assert {"iteration", "score", "status", "mutation_kind", "description", "fuel"} <= set(
        summary["history"][0]
    )
    tsv = swarm("log", str(PROBE), "--tsv", "-", data_dir=tmp_path)
    assert tsv.returncode == 0, tsv.stderr
    lines = tsv.stdout.splitlines()
    assert lines[0].split("\t") == [
        "commit",
        "parent",
        "score",
        "status",
        "mutation_kind",
        "description",
        "fuel",
    ]
    assert len(lines) == 1 + 1 + summary["iterations"]
    assert lines[1].split("\t")[3] == "baseline"
    assert {line.split("\t")[3] for line in lines[2:]} <= {
        "keep",
        "discard",
        "crash",
        "invalid",
        "invalid_output",
    }
    table = swarm("log", str(PROBE), data_dir=tmp_path)
    assert table.returncode == 0 and "baseline" in table.stdout


def test_bad_package_is_a_usage_error_with_every_defect(tmp_path: Path) -> None:
    (tmp_path / "problem.toml").write_text('name = "x"\n[metric]\ndirection = "up"\n')
    done = swarm("run", str(tmp_path))
    assert done.returncode == 2
    assert "statement" in done.stderr and "direction" in done.stderr
    assert "Traceback" not in done.stderr


def test_llm_mutator_without_configuration_says_what_to_set(tmp_path: Path) -> None:
    env_free = {k: v for k, v in os.environ.items() if "API_KEY" not in k and "BASE_URL" not in k}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from node.cli import main; main()",
            "run",
            str(PROBE),
            "--mutator",
            "anthropic",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env_free,
        timeout=120,
    )
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in done.stderr


def test_ctrl_c_exits_130_and_keeps_every_finished_attempt(tmp_path: Path) -> None:
    import shutil
    import signal

    from node.store import RecordStore

    package = tmp_path / "pkg"
    shutil.copytree(PROBE, package)
    manifest = package / "problem.toml"
    manifest.write_text(manifest.read_text().replace("target = 10\n", ""))
    env = {**os.environ, "SWARM_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen(
        [sys.executable, "-c", "from node.cli import main; main()", "run", str(package),
         "--iterations", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait for real progress, not for a sleep
        if line.startswith("keep"):
            break
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "stopped: interrupted" in stdout
    with RecordStore.open(tmp_path / "data" / "records.sqlite") as store:
        records = list(store.iter_records(kind="experiment"))
    assert len(records) >= 2  # the baseline and at least the kept attempt
    log = swarm("log", str(package), "--json", data_dir=tmp_path / "data")
    assert log.returncode == 0 and len(json.loads(log.stdout)) == len(records)


def test_pose_validates_then_status_and_leaderboard_show_the_problem(tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    posed = swarm("pose", "--from", str(PROBE), "--data-dir", str(data), "--json")
    assert posed.returncode == 0, posed.stderr
    report = json.loads(posed.stdout)
    assert report["status"] == "ok" and len(report["problem"]) == 64
    status = json.loads(swarm("status", "--data-dir", str(data), "--json").stdout)
    assert [p["id"] for p in status["problems"]] == [report["problem"]]
    assert status["records"] == {"problem": 1}
    board = json.loads(swarm("leaderboard", "--data-dir", str(data), "--json").stdout)
    assert board[0]["id"] == report["problem"] and board[0]["rows"] == []
    missing = swarm("leaderboard", "nope", "--data-dir", str(data))
    assert missing.returncode == 2 and "no problem matching" in missing.stderr
    # a package whose baseline crashes is refused before anything is published
    broken = tmp_path / "broken"
    shutil.copytree(PROBE, broken)
    (broken / "strategy.py").write_text("def solve(d):\n    raise RuntimeError('no')\n")
    refused = swarm("pose", "--from", str(broken), "--data-dir", str(tmp_path / "other"))
    assert refused.returncode == 1
    assert "does not evaluate: crash" in refused.stderr and "RuntimeError" in refused.stderr
    assert not (tmp_path / "other" / "records.sqlite").exists()


def test_init_scaffolds_a_package_that_evaluates_and_can_improve(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    assert swarm("init", str(target)).returncode == 0
    report = json.loads(swarm("eval", str(target), "--json").stdout)
    assert (report["status"], report["score"]) == ("ok", 0.8)  # room to improve
    again = swarm("init", str(target))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_plain_english_pose_without_an_llm_says_what_to_set(tmp_path: Path) -> None:
    env_free = {k: v for k, v in os.environ.items() if "API_KEY" not in k and "BASE_URL" not in k}
    done = subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", "pose", "optimize my sort",
         "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, env=env_free, timeout=120,
    )
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in done.stderr and "swarm init" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 3  # one message (wrapped by the terminal)
    assert not (tmp_path / "d").exists()  # nothing half-written


def test_run_no_stop_spends_the_budget_and_json_counts_distinct_evaluations(
    tmp_path: Path,
) -> None:
    """Issue 14, rough edges 1 and 2: past the target with --no-stop; iterations, distinct
    evaluations, repeats and their fuel reported apart."""
    done = swarm("run", str(PROBE), "--iterations", "30", "--no-stop", "--json",
                 data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["best"] >= summary["target"]  # met early, and the run went on
    assert (summary["iterations"], summary["stop_reason"]) == (30, "iterations")
    assert summary["evaluations"] + summary["repeats"] == summary["iterations"]
    repeated = [step for step in summary["history"] if step["repeat"]]
    assert len(repeated) == summary["repeats"]
    assert summary["evaluation_fuel"] == summary["fuel_spent"] - sum(s["fuel"] for s in repeated)
    assert summary["redrawn"] >= 0 and summary["drifts"] == 0
    again = swarm("run", str(PROBE), "--iterations", "30", "--json", data_dir=tmp_path / "b")
    assert json.loads(again.stdout)["stop_reason"] == "target_reached"


def test_simulate_no_stop_runs_every_round_and_times_each() -> None:
    """Issue 14, rough edges 1 and 7."""
    runs = {flag: swarm("simulate", "--problem", str(PROBE), "--nodes", "2", "--rounds", "14",
                        "--json", *([flag] if flag else []))
            for flag in ("", "--no-stop")}
    reports = {flag: json.loads(done.stdout) for flag, done in runs.items()}
    assert reports[""]["rounds_run"] < 14 == reports["--no-stop"]["rounds_run"]
    history = reports["--no-stop"]["history"]
    assert all(row["seconds"] > 0 for row in history)
    assert reports["--no-stop"]["swarm"]["seconds"] >= sum(row["seconds"] for row in history) - 1e-3


def test_eval_scores_several_candidates_in_one_process(tmp_path: Path) -> None:
    """Issue 14, rough edge 6: repeated --strategy files and JSON Lines on stdin, in order,
    each labelled; a bad line is a usage error naming it."""
    files = []
    for scale in (0.25, 1.5):
        files.append(tmp_path / f"s{scale}.py")
        files[-1].write_text((PROBE / "strategy.py").read_text().replace(
            "SCALE = 0.5", f"SCALE = {scale}"))
    done = swarm("eval", str(PROBE), "--strategy", str(files[0]), "--strategy", str(files[1]),
                 "--json")
    assert done.returncode == 0, done.stderr
    assert [(row["candidate"], row["score"]) for row in json.loads(done.stdout)] == [
        (str(files[0]), 0.5), (str(files[1]), 3.0)]
    lines = "".join(json.dumps({"strategy.py": path.read_text()}) + "\n\n" for path in files)
    crash = json.dumps({"strategy.py": "def solve(d):\n    raise ValueError('no')\n"})

    def piped(text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from node.cli import main; main()", "eval", str(PROBE),
             "--candidates", "-", "--json"], input=text, capture_output=True, text=True,
            timeout=300)

    batch = piped(lines + crash + "\n")
    assert batch.returncode == 1  # one candidate crashed: reported, and the exit code says so
    rows = json.loads(batch.stdout)
    assert [(row["candidate"], row["status"], row["score"]) for row in rows] == [
        ("stdin:1", "ok", 0.5), ("stdin:3", "ok", 3.0), ("stdin:5", "crash", None)]
    for bad, said in (("[1]\n", "stdin:1"), ('{"evaluate.py": "x"}\n', "not a mutable file"),
                      ("{nope\n", "not a JSON object")):
        refused = piped(bad)
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr


def test_an_unconfigured_eval_model_is_bad_usage_that_names_the_offline_model(
    tmp_path: Path,
) -> None:
    skill = Path(__file__).parent.parent / "examples" / "skill_landing_copy"
    env_key = os.environ.pop("ANTHROPIC_API_KEY", None)
    try:
        done = swarm("eval", str(skill), "--eval-model", "anthropic", data_dir=tmp_path)
    finally:
        if env_key is not None:
            os.environ["ANTHROPIC_API_KEY"] = env_key
    assert done.returncode == 2, done.stderr
    assert "ANTHROPIC_API_KEY" in done.stderr and "--eval-model standin" in done.stderr
    assert "offline mutator" not in done.stderr
