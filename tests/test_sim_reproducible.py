"""A seeded simulation gives the same trace every time: the same report, round by round, node
by node (issue 14, rough edge 3), faults and the worker threads of evaluation notwithstanding."""

from __future__ import annotations

from typing import Any

from node.sim import Faults, SimConfig, Simulation
from research_dag import Problem
from sandbox import Runtime


async def _trace(runtime: Runtime, problem: Problem) -> dict[str, Any]:
    config = SimConfig(nodes=3, problems=(problem,), rounds=7, seed=5, stop_at_target=False,
                       faults=Faults.parse("churn=0.34,liars=0.34"))
    report = await Simulation(config, runtime).run()
    assert all(row["seconds"] > 0 for row in report["history"])  # per-round timing (edge 7)
    for row in report["history"]:  # wall-clock time is the one thing allowed to differ
        del row["seconds"]
    del report["swarm"]["seconds"]
    return report


async def test_the_same_seed_gives_the_same_trace(runtime: Runtime,
                                                   probe_problem: Problem) -> None:
    first = await _trace(runtime, probe_problem)
    second = await _trace(runtime, probe_problem)
    assert first["rounds_run"] == 7
    assert [n["churned"] for n in first["nodes"]].count(True) == 1  # the faults ran
    assert first["swarm"]["fake_claims"] > 0
    assert first == second
