"""A solo `swarm run` derives the playbook about its own problem from its first run in a data
directory: the curator reads only the problems its DAG knew when loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from node.store import RecordStore
from research_dag import Pattern

PROBE = Path(__file__).parent / "fixtures" / "probe"


def test_a_first_run_in_a_fresh_data_dir_derives_patterns_about_its_problem(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", "run", str(PROBE),
         "--iterations", "8", "--data-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        problems = list(store.iter_records(kind="problem"))
        patterns = [p for p in store.iter_records(kind="pattern") if isinstance(p, Pattern)]
    assert len(problems) == 1
    # 8 described attempts on one site: some class has the 4 attempts of a first snapshot
    assert patterns and all(p.problems == [problems[0].id] for p in patterns)
