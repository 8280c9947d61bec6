"""`swarm log`, `leaderboard` and `status` find a problem by package directory, name or id prefix,
list every match when several do (exit 2), and `status` shows the drop counters a `swarm join`
wrote (issue 10: `swarm log examples/X` on a join node's data printed [] although it held 367
experiments of that package: the posed problem has another id, its author's)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from node.identity import Identity, load_or_create, sign_record
from node.store import RecordStore
from research_dag import Problem

PROBE = Path(__file__).parent / "fixtures" / "probe"


def swarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", *args],
        capture_output=True, text=True, env=dict(os.environ), timeout=300,
    )


def _join_until_keeps(data: Path, count: int) -> None:
    """A real `swarm join` on this data directory until `count` keeps, then Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from node.cli import main; main()", "join", "--listen",
         "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    assert process.stdout is not None
    keeps = 0
    for line in process.stdout:  # wait for real progress, not for a sleep
        keeps += line.startswith("keep")
        if keeps == count:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert keeps == count and process.returncode == 130, stderr


def test_a_joined_problem_is_found_by_package_name_or_id_prefix(
    probe_problem: Problem, tmp_path: Path
) -> None:
    data = tmp_path / "node"
    identity = load_or_create(data / "identity.key")
    posed = sign_record(probe_problem, identity)
    assert posed.id != probe_problem.id  # the author is part of the id
    with RecordStore.open(data / "records.sqlite") as store:
        store.add(posed)
    _join_until_keeps(data, 2)
    d = ("--data-dir", str(data))
    by_package = swarm("log", str(PROBE), "--json", *d)
    assert by_package.returncode == 0, by_package.stderr
    rows = json.loads(by_package.stdout)
    assert len(rows) >= 3  # the baseline and two keeps; before: []
    for query in ("probe", posed.id[:8], posed.id):
        found = swarm("log", query, "--json", *d)
        assert found.returncode == 0 and json.loads(found.stdout) == rows, found.stderr
    board = json.loads(swarm("leaderboard", str(PROBE), "--json", *d).stdout)
    assert [b["id"] for b in board] == [posed.id] and board[0]["rows"]
    status = json.loads(swarm("status", "probe", "--json", *d).stdout)
    assert [p["id"] for p in status["problems"]] == [posed.id]
    # what the node counted, by reason, written by `swarm join` as it stopped
    node = status["node"]
    assert node["drops"] == dict.fromkeys(
        ["oversize", "malformed", "version", "invalid_record", "signature", "topic",
         "inconsistent", "underived", "disk", "ahead", "catalogue"], 0)
    assert node["evaluations"] >= 2 and node["peer_id"] == identity.peer_id
    assert node["sync_serving"] == dict.fromkeys(  # alone: nobody asked for our records
        ["served", "queued", "paced", "refused", "busy", "displaced", "expired", "throttled"],
        0)
    text = swarm("status", *d).stdout
    assert "drops    oversize 0, malformed 0, version 0, invalid_record 0" in text, text
    assert "serving  served 0, queued 0, paced 0, refused 0" in text, text


def test_several_matches_are_listed_one_a_line_with_exit_2(
    probe_problem: Problem, tmp_path: Path
) -> None:
    data = tmp_path / "node"
    copies = [sign_record(probe_problem, Identity.from_seed(bytes([n]) * 32)) for n in (1, 2)]
    with RecordStore.open(data / "records.sqlite") as store:
        for copy in copies:
            store.add(copy)
    d = ("--data-dir", str(data))
    for command, query in (("log", str(PROBE)), ("leaderboard", "probe"), ("status", "probe")):
        ambiguous = swarm(command, query, *d)
        assert ambiguous.returncode == 2, (command, ambiguous.stderr)
        assert "2 problems match" in ambiguous.stderr
        listed = [line for line in ambiguous.stderr.splitlines() if line.startswith("  ")]
        assert sorted(line.split()[0] for line in listed) == sorted(c.id[:16] for c in copies)
    one = swarm("log", copies[0].id[:10], *d)
    assert one.returncode == 0 and "no experiments recorded for probe yet" in one.stdout
    missing = swarm("log", "nope", *d)
    assert missing.returncode == 2 and "no problem matching" in missing.stderr
