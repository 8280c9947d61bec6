"""`swarm log` computes the noise gate only where it decides or is shown (node/report.py
`changelog`): the rows a user sees, and every gate line of the node's own rows, are what they
were when the gate was computed for every row; an unverified peer's row gets no gate line; the
TSV (no gate column) judges only rows that beat the best and gives the same file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from node.identity import Identity, sign_record
from node.report import changelog, changelog_tsv
from node.store import RecordStore
from research_dag import Experiment, Metric, ModelLimits, Outcome, Problem

UP = Metric(name="pass_rate", direction="maximize")
PROBLEM = Problem(name="gated", statement="s", metric=UP, mutable=["SKILL.md"], runner="run.py",
                  entry="run", model=ModelLimits(),
                  files={"SKILL.md": b"x", "run.py": b"", "evaluate.py": b""})
PEER = Identity.from_seed(b"\x05" * 32)

# One attempt: whose (ours, a peer's), its cases' verdicts (None: a crash), which earlier
# attempt of its author it builds on (an index into them, modulo; the first has no parent),
# and whether its outcome reports its cases (without, the plain comparison and drift apply).
Attempt = tuple[bool, list[str] | None, int, bool]
attempts = st.lists(st.tuples(
    st.booleans(),
    st.none() | st.lists(st.sampled_from(["00", "10", "11"]), min_size=6, max_size=6),
    st.integers(0, 50), st.booleans()), min_size=1, max_size=14)


def _history(plan: list[Attempt]) -> list[Experiment]:
    records: list[Experiment] = []
    chains: dict[bool, list[Experiment]] = {True: [], False: []}
    for index, (ours, verdicts, parent_at, cases) in enumerate(plan):
        if verdicts is None:
            outcome = Outcome(status="crash")
        else:
            details: dict[str, str | float | int | bool] = {
                f"case:{i}": v for i, v in enumerate(verdicts)}
            outcome = Outcome(status="ok", score=sum(v.count("1") for v in verdicts) / 12,
                              details=details if cases else {})
        chain = chains[ours] or chains[True]
        parent = chain[parent_at % len(chain)].id if chain else None
        record = Experiment(problem=PROBLEM.id, parent=parent, strategy={"SKILL.md": str(index)},
                            outcome=outcome, created_ms=index)
        if not ours:
            signed = sign_record(record, PEER)
            assert isinstance(signed, Experiment)
            record = signed
        chains[ours].append(record)
        records.append(record)
    return records


def _ours(experiment: Experiment) -> bool:
    return experiment.author == "local"


def _without_gate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in row.items() if key != "gate"} for row in rows]


@settings(max_examples=40, deadline=None)
@given(attempts)
def test_the_rows_shown_are_those_of_a_gate_computed_for_every_row(plan: list[Attempt]) -> None:
    history = _history(plan)
    rows = changelog(history, UP, _ours, PROBLEM)
    # Every row of ours is what it is in a history of ours alone, where every row is judged
    # (as every row was before): unverified rows never moved the best, so neither the
    # statuses nor the gate lines of ours depend on them.
    own = changelog([e for e in history if _ours(e)], UP, _ours, PROBLEM)
    assert [row for row, e in zip(rows, history, strict=True) if _ours(e)] == own
    for row, experiment in zip(rows, history, strict=True):
        if not _ours(experiment):
            assert row["status"] == "unverified" and row["gate"] == ""
    # Without gate lines (the TSV): the same rows, statuses (drift too) and file.
    tsv = changelog(history, UP, _ours, PROBLEM, gate_lines=False)
    assert _without_gate(tsv) == _without_gate(rows)
    assert changelog_tsv(tsv) == changelog_tsv(rows)


def test_swarm_log_tsv_is_the_file_the_table_rows_give(tmp_path: Path) -> None:
    history = _history([(True, ["00"] * 6, 0, True), (False, ["11"] * 6, 0, True),
                        (True, ["10"] * 6, 0, True), (True, ["10"] * 5 + ["11"], 0, True),
                        (True, None, 0, True), (False, ["11"] * 5 + ["10"], 1, True)])
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        for record in [PROBLEM, *history]:
            store.add(record)
    env = {**os.environ, "SWARM_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", "from node.cli import main; main()", "log",
                           PROBLEM.name, "--tsv", "-"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    rows = changelog(history, UP, _ours, PROBLEM)
    assert done.stdout == changelog_tsv(rows)
    assert [row["status"] for row in rows] == [
        "baseline", "unverified", "keep", "discard", "crash", "unverified"]
    table = subprocess.run([sys.executable, "-c", "from node.cli import main; main()", "log",
                            PROBLEM.name], capture_output=True, text=True, timeout=300, env=env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("noise gate: ") == 2  # our two judged rows, no peer's
    assert rows[2]["gate"].endswith("kept") and rows[3]["gate"].endswith("within noise")
    shown = " ".join(table.stdout.replace("│", " ").split())
    assert all(" ".join(rows[i]["gate"].split()) in shown for i in (2, 3))


def test_a_drift_row_stays_drift_when_the_gate_is_not_judged_for_its_line() -> None:
    # Outcomes without cases: the plain comparison; the second equals the best and our third
    # builds on it (neutral drift), which needs to know the gate had no decision on it.
    history = _history([(True, ["10"] * 6, 0, False), (True, ["10"] * 6, 0, False),
                        (True, ["11"] * 6, 1, True)])
    rows = changelog(history, UP, _ours, PROBLEM)
    assert [row["status"] for row in rows] == ["baseline", "drift", "keep"]
    assert _without_gate(changelog(history, UP, _ours, PROBLEM, gate_lines=False)) == (
        _without_gate(rows))
