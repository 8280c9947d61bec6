"""`swarm gc` on a real data directory: old experiments nobody needs go (with peers'
verifications of them and the files only they used), everything a best lineage, a live
pattern, a hypothesis, an open claim or our ledger needs stays, and a node does not fetch the
dropped records again."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.identity import Identity, load_or_create, sign_record
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.retention import Retention, plan
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import (
    Experiment,
    Hypothesis,
    Metric,
    Outcome,
    Pattern,
    Problem,
    Record,
    Verification,
)

PEER = Identity.from_seed(b"\x31" * 32)
PROBLEM = sign_record(Problem(
    name="gc", statement="optimise gc", metric=Metric(name="score", direction="maximize"),
    mutable=["strategy.py"], files={"strategy.py": b"def solve(inputs):\n    return 1\n"},
    author=PEER.peer_id, created_ms=1), PEER)
DAY_MS = 86_400_000
NOW_MS = time.time_ns() // 1_000_000  # swarm gc reads the clock


def experiment(n: int, parent: Experiment | None, score: float | None, at: int,
               author: Identity = PEER, hypothesis: str | None = None) -> Experiment:
    made = sign_record(Experiment(
        problem=PROBLEM.id, parent=None if parent is None else parent.id,
        strategy={"strategy.py": f"# attempt {n}\n" + "x = 1\n" * 50},
        outcome=Outcome(status="ok", score=score) if score is not None
        else Outcome(status="crash"), mutation_kind="perturb", hypothesis_id=hypothesis,
        author=author.peer_id, created_ms=at), author)
    assert isinstance(made, Experiment)
    return made


class History:
    """A data directory's records: a best lineage, dead ends, a live pattern's evidence, a
    hypothesis test, an open claim, verifications by us and by a peer; all old but the last."""

    def __init__(self, me: Identity) -> None:
        old = NOW_MS - 30 * DAY_MS
        self.baseline = experiment(0, None, 1.0, old)
        self.best_1 = experiment(1, self.baseline, 2.0, old + 1)
        self.best_2 = experiment(2, self.best_1, 3.0, old + 2)
        self.dead = [experiment(10 + n, self.best_1, 0.5 if n % 2 else None, old + 10 + n)
                     for n in range(6)]
        self.cited = experiment(20, self.baseline, 0.1, old + 20)
        pattern = Pattern(mutation_kind="perturb", text="x", supporting=[self.cited.id],
                          created_ms=old)
        hypothesis = Hypothesis(pattern=pattern.id, problem=PROBLEM.id, mutation_kind="perturb",
                                text="y", created_ms=old)
        self.tester = experiment(21, self.baseline, 0.2, old + 21, hypothesis=hypothesis.id)
        stranger = Identity.from_seed(b"\x32" * 32)
        # a finding (beats its parent), unjudged, not the best: an open claim
        self.claim = experiment(22, self.best_1, 2.5, old + 22, author=stranger)
        self.recent = experiment(23, self.best_2, 0.3, NOW_MS - DAY_MS)
        self.ours = Verification(experiment=self.dead[0].id, outcome=self.dead[0].outcome,
                                 match=True, author=me.peer_id, created_ms=old)
        self.theirs = [Verification(experiment=e.id, outcome=e.outcome, match=True,
                                    author=stranger.peer_id, created_ms=old)
                       for e in (self.dead[1], self.best_2)]
        self.records: list[Record] = [
            PROBLEM, self.baseline, self.best_1, self.best_2, *self.dead, self.cited, pattern,
            hypothesis, self.tester, self.claim, self.recent, self.ours, *self.theirs]

    def droppable(self) -> set[str]:
        return {e.id for e in self.dead[1:]} | {self.theirs[0].id}


def swarm(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", "gc", *args],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "SWARM_DATA_DIR": str(data_dir)})


def fill(data_dir: Path) -> History:
    me = load_or_create(data_dir / "identity.key")
    history = History(me)
    with RecordStore.open(data_dir / "records.sqlite") as store:
        store.add_many(history.records)
    return history


def test_the_plan_drops_only_what_nobody_needs(tmp_path: Path) -> None:
    history = fill(tmp_path)
    me = load_or_create(tmp_path / "identity.key")
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        dag = store.load_dag(cache=4)
        chosen = plan(dag, me.peer_id, Retention(keep_days=7), NOW_MS)
    assert set(chosen.drop) == history.droppable()
    assert chosen.kept_because["we replayed it"] == 1  # dead[0]: our ledger rests on it
    assert chosen.kept_because["best lineage"] == 3  # baseline, best_1, best_2
    assert chosen.kept_because["cited by a live pattern"] == 1
    assert chosen.kept_because["tests a hypothesis"] == 1
    assert chosen.kept_because["open claim"] == 1


def test_the_plan_keeps_the_newest_per_problem(tmp_path: Path) -> None:
    history = fill(tmp_path)
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        dag = store.load_dag()
        everything = plan(dag, "me", Retention(keep_last=0), NOW_MS)
        nothing = plan(dag, "me", Retention(keep_last=100), NOW_MS)
    assert history.recent.id in everything.drop and not nothing.drop


@pytest.mark.parametrize("args", [[], ["--keep-days", "1", "--keep-last", "3"],
                                  ["--keep-last", "-1"]])
def test_bad_usage_is_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = swarm(tmp_path, *args)
    assert result.returncode == 2, result.stderr


def test_dry_run_changes_nothing_then_gc_drops_and_shrinks(tmp_path: Path) -> None:
    history = fill(tmp_path)
    path = tmp_path / "records.sqlite"
    dry = swarm(tmp_path, "--keep-days", "7", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["drop"] == 6 and report["dropped"] == 0
    with RecordStore.open(path) as store:
        assert store.count() == len(history.records)
        blobs_before = _count(path, "blobs")
    done = swarm(tmp_path, "--keep-days", "7")
    assert done.returncode == 0, done.stderr
    assert "dropped 6 of" in done.stdout
    with RecordStore.open(path) as store:
        kept = {r.id for r in store.iter_records()}  # every remaining record re-assembles
        assert kept == {r.id for r in history.records} - history.droppable()
        assert store.dropped_ids() == history.droppable()
    assert _count(path, "blobs") == blobs_before - 5  # the dead ends' files went with them


def test_a_store_damaged_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "records.sqlite").write_bytes(b"not a database" * 100)
    result = swarm(tmp_path, "--keep-last", "5")
    assert result.returncode == 1 and "error" in result.stderr


async def test_a_node_does_not_fetch_dropped_records_again(tmp_path: Path) -> None:
    history = fill(tmp_path / "mine")
    assert swarm(tmp_path / "mine", "--keep-days", "7").returncode == 0

    def no_evaluator(problem: Problem):  # type: ignore[no-untyped-def]
        raise AssertionError("nothing is researched here")

    hub = MemoryHub(seed=4)
    config = NodeConfig(problems=())
    with RecordStore.open(tmp_path / "peer.sqlite") as peer_store, \
            RecordStore.open(tmp_path / "mine" / "records.sqlite") as my_store:
        peer_store.add_many(history.records)
        async with hub.open_node("peer") as peer_net, hub.open_node("me") as my_net:
            SwarmNode(Identity.from_seed(b"\x41" * 32), peer_net, peer_store, no_evaluator,
                      OfflineMutator(), config)
            me = SwarmNode(Identity.from_seed(b"\x42" * 32), my_net, my_store, no_evaluator,
                           OfflineMutator(), config)
            await my_net.connect("/memory/peer")
            assert await me.sync.sync_with("peer") == 0
            assert await me.take(history.records) == 0  # nor by gossip
            assert not me.dropped & me.dag.ids()


def _count(path: Path, table: str) -> int:
    raw = sqlite3.connect(path)
    try:
        return int(raw.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        raw.close()
