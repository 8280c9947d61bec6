"""A simulated swarm's first round is its own (issue 14, 16 nodes): every node joins before
round 1, so no node hears of a peer's round-1 work during round 1, and the seed alone decides
the records (a join inside the round pulled whatever a peer had evaluated by then)."""

from __future__ import annotations

from pathlib import Path

import trio

from node.problem import load_package
from node.sim import SimConfig, Simulation
from research_dag import Experiment
from sandbox import Runtime

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class _Checked(Simulation):
    """Every node has joined (its loop prepared, its baseline evaluated, the history pulled)
    before any node works: a join inside round 1 raced the peers' first evaluations."""

    async def _rounds(self, nursery: trio.Nursery) -> None:
        assert all(sim.node is not None and sim.node.loops for sim in self.plan)
        await super()._rounds(nursery)


async def _first_round(runtime: Runtime) -> list[tuple[str, str | None, str]]:
    problem = load_package(EXAMPLES / "finance_factors")
    held: list[tuple[str, str | None, str]] = []

    async def finish(simulation: Simulation) -> None:
        for sim in simulation.plan:
            node = sim.node
            assert node is not None
            for record in node.store.iter_records(kind="experiment",
                                                  problem=simulation.problem.id):
                if isinstance(record, Experiment) and record.author == node.me:
                    held.append((record.id, record.parent, record.mutation_kind))

    config = SimConfig(nodes=4, problems=(problem,), rounds=1, seed=3, stop_at_target=False)
    await _Checked(config, runtime, finish=finish).run()
    return sorted(held, key=lambda row: row[0])


async def test_round_one_builds_on_baselines_only_and_repeats(runtime: Runtime) -> None:
    first = await _first_round(runtime)
    baselines = {record_id for record_id, parent, _ in first if parent is None}
    assert len(baselines) == 4 and len(first) == 8  # a baseline and one change each
    assert all(parent in baselines for _, parent, _ in first if parent is not None)
    assert await _first_round(runtime) == first
