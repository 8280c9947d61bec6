"""Knowledge travels and is never trusted (issue 11): two nodes holding the same replayed evidence
derive the same pattern (same id) and gossip deduplicates it; a peer's fake pattern or
hypothesis is never stored, nor handed to a loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio
from hostile_peer import ATTACKER, envelope

from node.identity import Identity, sign_record
from node.loop import LoopConfig
from node.mutators import OfflineMutator
from node.net import PROBLEMS_TOPIC, problem_topic
from node.net.memory import MemoryHub
from node.sim import SimConfig, Simulation, settle
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import (
    DERIVED_AUTHOR,
    Change,
    Experiment,
    Hypothesis,
    Pattern,
    Problem,
    Record,
    encode_record,
)
from sandbox import Evaluator, Runtime

WINNER = Change(operation="perturb", affordance="constant", site="strategy.py:SCALE")
OTHER = Change(operation="replace", affordance="constant", site="strategy.py:SCALE")


def _identity(index: int) -> Identity:
    return Identity.from_seed(bytes([index + 41]) * 32)


@asynccontextmanager
async def _node(hub: MemoryHub, index: int, path: Path, runtime: Runtime
                ) -> AsyncIterator[SwarmNode]:
    identity = _identity(index)
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(hub.open_node(identity.peer_id))
        store = stack.enter_context(RecordStore.open(path / f"{index}.sqlite"))

        def evaluator_for(problem: Problem):  # type: ignore[no-untyped-def]
            return stack.enter_context(Evaluator(runtime, problem)).evaluate

        # curate_every=0: the test says when each node derives
        node = SwarmNode(identity, network, store, evaluator_for, OfflineMutator(),
                         NodeConfig(loop=LoopConfig(seed=index), curate_every=0))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


def _attempts(node: SwarmNode, problem: Problem, runtime: Runtime, start_ms: int
              ) -> list[Record]:
    """Real evaluations by `node` on `problem`, described in the change vocabulary: the
    other class first, 0 of 5 (the base rate), then the winning class, improving 3 of 4
    times: two problems' attempts make the class's 8th a snapshot with two source problems."""
    baseline = next(e for e in node.dag.experiments(problem.id) if e.author == node.me)
    made: list[Record] = []
    plan = [(OTHER, scale) for scale in (0.1, 0.2, 0.3, 0.45, 0.35)]
    plan += [(WINNER, 0.6), (WINNER, 0.7), (WINNER, 0.4), (WINNER, 0.8)]
    with Evaluator(runtime, problem) as evaluator:
        for n, (change, scale) in enumerate(plan):
            source = problem.files["strategy.py"].decode().replace("SCALE = 0.5",
                                                                   f"SCALE = {scale}")
            files = {"strategy.py": source}
            unsigned = Experiment(
                problem=problem.id, parent=baseline.id, strategy=files,
                mutation_kind=change.change_class, changes=[change],
                outcome=evaluator.evaluate(files), created_ms=start_ms + n,
            )
            signed = sign_record(unsigned, node.identity)
            assert isinstance(signed, Experiment)
            made.append(signed)
    return made


async def test_two_nodes_derive_the_same_pattern_and_a_fake_one_is_never_used(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=11)
    async with _node(hub, 0, tmp_path, runtime) as a, _node(hub, 1, tmp_path, runtime) as b, \
            hub.open_node(ATTACKER.peer_id) as attacker:
        await b.network.connect(a.network.listen_addrs()[0])
        await attacker.connect(a.network.listen_addrs()[0])
        await attacker.connect(b.network.listen_addrs()[0])
        problems = [await a.pose(probe_problem.model_copy(update={"name": name}))
                    for name in ("first", "second", "third")]
        await settle(hub, [a, b])
        await a.join_problems()
        await b.join_problems()
        await settle(hub, [a, b])
        # a's evidence on two problems, taken in by a and b alike; b replays every claim, so
        # both count the same experiments (a its own, b those its replays reproduced)
        evidence = [e for i, p in enumerate(problems[:2])
                    for e in _attempts(a, p, runtime, a.now_ms() + 100 * i)]
        await a.take(evidence)
        await b.take(evidence)
        for claim in evidence:
            assert isinstance(claim, Experiment) and (await b.replay(claim)).match
        await b.flush()  # its verifications
        await settle(hub, [a, b])

        received = [a.stats.received, b.stats.received]
        assert await a.curate() > 0 and await b.curate() > 0
        for node in (a, b):  # both publish: each already holds the other's copies
            await node.flush()
        await settle(hub, [a, b])
        assert [a.stats.received, b.stats.received] == received
        [pattern] = [p for p in a.knowledge.patterns() if p.mutation_kind == "perturb:constant"]
        assert pattern.status == "live" and pattern.author == DERIVED_AUTHOR
        assert [p.id for p in b.knowledge.patterns()] == [p.id for p in a.knowledge.patterns()]
        derived = [r.id for r in a.dag.records() if r.author == DERIVED_AUTHOR]
        assert derived == [r.id for r in b.dag.records() if r.author == DERIVED_AUTHOR]
        assert a.stats.derived == b.stats.derived == len(derived)
        assert all(node.stats.refused == node.stats.drops.total == 0 for node in (a, b))
        # the third problem, untouched, gets a hypothesis: the loop working on it is told
        third = problems[2].id
        [hypothesis] = a.knowledge.for_problem(third).hypotheses
        assert hypothesis.pattern == pattern.id and hypothesis.sites == ["strategy.py:SCALE"]
        assert a.loops[third].knowledge() == a.knowledge.for_problem(third)

        # Fakes, consistent with what they cite: live, but citing evidence that does not exist;
        # citing the real failures as support; a hypothesis of a fake pattern for `third`.
        failures = [e for e in evidence if isinstance(e, Experiment) and e.changes == [OTHER]]
        newest = max(e.created_ms for e in failures)
        ghost = Pattern(mutation_kind="prune:feature_set", operation="prune",
                        affordance="feature_set", text="pruning always wins",
                        supporting=["ab" * 32], success_rate=1.0, status="live",
                        author=DERIVED_AUTHOR, created_ms=1)
        twisted = Pattern(mutation_kind="replace:constant", operation="replace",
                          affordance="constant", text="replacing constants wins",
                          supporting=[e.id for e in failures], success_rate=1.0,
                          mean_delta=0.9, status="live", author=DERIVED_AUTHOR,
                          created_ms=newest)
        planted = Hypothesis(pattern=twisted.id, problem=third, mutation_kind="replace:constant",
                             operation="replace", affordance="constant", text="do it here",
                             sites=["strategy.py:SCALE"], expected_lift=0.9, tries=1,
                             author=DERIVED_AUTHOR,
                             created_ms=max(newest, problems[2].created_ms))
        await attacker.publish(PROBLEMS_TOPIC, envelope(encode_record(ghost),
                                                        encode_record(twisted)))
        await attacker.publish(problem_topic(third), envelope(encode_record(planted)))
        await settle(hub, [a, b])
        for node in (a, b):
            await node.curate()
            fakes = {ghost.id, twisted.id, planted.id}
            assert not fakes & node.dag.ids()  # never stored (tests/test_redteam_knowledge.py)
            assert not any(node.knowledge.derived_here(i) for i in fakes)  # ... not derived
            assert node.stats.drops.counts["underived"] == 3
            for problem in problems:  # ... and never used
                known = node.knowledge.for_problem(problem.id)
                assert {p.id for p in known.patterns} == {pattern.id}
                assert not fakes & {h.id for h in known.hypotheses}
            assert node.knowledge.for_problem(third).hypotheses == (hypothesis,)


async def test_a_simulation_reports_what_the_swarm_knows(
    runtime: Runtime, probe_problem: Problem
) -> None:
    """The report (and `swarm simulate --json`) ends with one honest node's knowledge: its
    patterns by status, hypotheses by state, the derived records it holds, the DAG's size and
    depth, measured while the nodes are still up."""
    simulation = Simulation(
        SimConfig(nodes=3, problems=(probe_problem,), rounds=12, seed=4, stop_at_target=False),
        runtime,
    )
    report = await simulation.run()
    knowledge = report["knowledge"]
    assert set(knowledge["patterns"]) == {"candidate", "live", "retired"}
    assert set(knowledge["hypotheses"]) == {"open", "confirmed", "refuted", "withdrawn"}
    assert set(knowledge["derived_records_held"]) == {"pattern", "hypothesis", "verdict"}
    # every node evaluated its baseline and 12 attempts at least, all in one problem's lineage
    assert knowledge["dag"]["records"] >= 1 + 3 * 13
    assert 2 <= knowledge["dag"]["depth"] <= 3 * 13
    assert knowledge["node"] in {n["index"] for n in report["nodes"]}
