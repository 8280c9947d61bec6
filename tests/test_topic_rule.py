"""A record must arrive on the gossip topic it belongs to (docs/protocol.md section 3): before,
an experiment published on the problems topic was accepted."""

from __future__ import annotations

from pathlib import Path

from hostile_peer import (
    ATTACKER,
    claim_fields,
    connect,
    envelope,
    open_victim,
    signed_bytes,
)

from node.net import PROBLEMS_TOPIC, problem_topic
from node.net.memory import MemoryHub
from node.problem import baseline_files
from node.sim import settle
from research_dag import Experiment, Outcome, Problem, Verification
from sandbox import Runtime


async def test_records_on_the_wrong_topic_are_refused_and_counted(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=91)
    async with open_victim(hub, runtime, tmp_path) as victim, \
            hub.open_node(ATTACKER.peer_id) as attacker:
        problem = await victim.pose(probe_problem)
        await victim.join_problems()
        other = await victim.pose(probe_problem.model_copy(update={"name": "other"}))
        await victim.join_problems()
        await connect(hub, attacker, victim)
        [baseline] = victim.dag.experiments(problem.id)
        claim = claim_fields(problem, baseline_files(problem), created_ms=5)
        vote = Verification(experiment=baseline.id, match=False,
                            outcome=Outcome(status="crash")).plain()
        misplaced = [
            (PROBLEMS_TOPIC, claim),  # an experiment on the problems topic (the JS peer's find)
            (problem_topic(other.id), {**claim, "created_ms": 6}),  # another problem's topic
            (problem_topic(other.id), vote),  # a verification of an experiment of `problem`
            (problem_topic(problem.id), probe_problem.model_dump(mode="python",
                                                                 exclude={"generator"})),
        ]
        for topic, fields in misplaced:
            await attacker.publish(topic, envelope(signed_bytes(fields)))
        await settle(hub, [victim])
        assert victim.stats.drops.counts == {"topic": len(misplaced)}
        assert victim.stats.received == 0
        assert victim.network.score(ATTACKER.peer_id) < 0  # type: ignore[attr-defined]
        # Such a claim on its own problem's topic is taken in (other bytes: the message id is
        # a content hash, and the network remembers the ids it saw).
        honest = {**claim, "created_ms": 7}
        await attacker.publish(problem_topic(problem.id), envelope(signed_bytes(honest)))
        await settle(hub, [victim])
        assert victim.stats.received == 1
        assert any(isinstance(r, Experiment) and r.created_ms == 7
                   for r in victim.dag.experiments(problem.id))
