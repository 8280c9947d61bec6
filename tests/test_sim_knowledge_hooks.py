"""The simulator's hooks for measuring knowledge (bench/bench_knowledge.py): problems posed one
every few rounds, each node researching as many as asked, and node 0's store kept in a data
directory that the `swarm dag` views open as node 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.identity import IDENTITY_FILE, load_or_create
from node.leaderboard import ledger_from
from node.sim import SimConfig, Simulation
from node.store import RecordStore
from research_dag import Experiment, Problem
from sandbox import Runtime


async def test_later_problems_are_posed_later_and_node_0_keeps_its_store(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    second = probe_problem.model_copy(update={"name": "probe-later"})
    kept = tmp_path / "node-0"
    simulation = Simulation(
        SimConfig(nodes=3, problems=(probe_problem, second), rounds=6, seed=2,
                  stop_at_target=False, pose_every=4, max_problems=2, data_dir=kept),
        runtime,
    )
    await simulation.run()
    me = load_or_create(kept / IDENTITY_FILE).peer_id
    assert me == simulation.plan[0].identity.peer_id
    with RecordStore.open(kept / "records.sqlite") as store:
        dag = store.load_dag(cache=64)
        names = {p.name: p.id for p in dag.problems()}
        assert set(names) == {probe_problem.name, "probe-later"}
        first = [e for e in dag.experiments(names[probe_problem.name])
                 if isinstance(e, Experiment)]
        later = [e for e in dag.experiments(names["probe-later"]) if isinstance(e, Experiment)]
        # rounds 1-6 on the first problem; the second is posed at round 4, and every node
        # (two problems each) takes it up, alternating with the first
        assert len(later) >= 3
        assert min(e.created_ms for e in later) > min(e.created_ms for e in first)
        assert {e.author for e in later} == {sim.identity.peer_id for sim in simulation.plan}
        assert ledger_from(dag, me).me == me
    with pytest.raises(ValueError, match="already holds a store"):
        Simulation(SimConfig(nodes=1, problems=(probe_problem,), data_dir=kept), runtime)
