"""The search in the loop and the swarm (issue 14): a node's search observes the experiments of
peers that vouch (the ones it has not replayed too), those that arrived before the author vouched
as well, never a stranger's; a seeded loop repeats itself."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import trio

from node.identity import Identity, sign_record
from node.loop import LoopConfig, ResearchLoop
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.problem import load_package
from node.sim import settle
from node.store import RecordStore
from node.swarm import Evaluate, NodeConfig, SwarmNode
from research_dag import Experiment, Outcome, Problem
from sandbox import Evaluator, Runtime

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def test_a_node_observes_the_experiments_of_peers_that_vouch_and_no_strangers(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=3)
    async with AsyncExitStack() as stack:
        nodes = []
        nurseries: list[trio.Nursery] = []
        for index in range(2):
            identity = Identity.from_seed(bytes([index + 7]) * 32)
            network = await stack.enter_async_context(hub.open_node(identity.peer_id))
            store = stack.enter_context(RecordStore.open(tmp_path / f"{index}.sqlite"))

            def evaluator_for(problem: Problem, stack: AsyncExitStack = stack) -> Evaluate:
                return stack.enter_context(Evaluator(runtime, problem)).evaluate

            node = SwarmNode(identity, network, store, evaluator_for, OfflineMutator(),
                             NodeConfig(loop=LoopConfig(seed=index)))
            nursery = await stack.enter_async_context(trio.open_nursery())
            await nursery.start(node.serve)
            nurseries.append(nursery)
            nodes.append(node)
        a, b = nodes
        await b.network.connect(a.network.listen_addrs()[0])
        await settle(hub, nodes)
        posed = await a.pose(probe_problem)
        await settle(hub, nodes)

        async def rounds(count: int) -> list[Experiment]:
            for _ in range(count):
                for node in nodes:
                    await node.research_round()
                await settle(hub, nodes)
            return [r for r in b.dag.records("experiment")
                    if isinstance(r, Experiment) and r.author == a.me]

        before = await rounds(2)
        search = b.loops[posed.id].search
        assert search is not None
        assert len(before) >= 2 and not b.ledger.measured(a.me)  # no claim of a's replayed yet
        assert not any(search.memory.holds(record.id) for record in before)
        b.ledger.record_replay(before[0], True)  # what b's replay of a's claim does
        assert b.ledger.vouches(a.me)
        after = [r for r in await rounds(2) if r not in before]
        assert len(after) >= 2
        assert all(search.memory.holds(record.id) for record in after)
        # What a's experiments arrived before b vouched for a is held until then, not lost.
        assert all(search.memory.holds(record.id) for record in before)
        theirs = before + after
        # A stranger's forged score is never the model's data (nor a parent).
        stranger = Identity.from_seed(b"\x63" * 32)
        forged = sign_record(theirs[-1].model_copy(update={
            "outcome": Outcome(status="ok", score=1e9), "author": stranger.peer_id,
            "created_ms": theirs[-1].created_ms + 1}), stranger)
        assert isinstance(forged, Experiment)
        assert await b._take([forged]) == 1
        assert b.dag.get(forged.id) is not None
        assert not b.ledger.vouches(stranger.peer_id)
        assert not search.memory.holds(forged.id)
        for nursery in nurseries:
            nursery.cancel_scope.cancel()


async def test_a_seeded_loop_makes_the_same_changes_twice(runtime: Runtime, tmp_path: Path) -> None:
    problem = load_package(EXAMPLES / "finance_factors")
    runs = []
    for attempt in range(2):
        with Evaluator(runtime, problem) as evaluator, \
                RecordStore.open(tmp_path / f"{attempt}.sqlite") as store:
            loop = ResearchLoop(problem, evaluator.evaluate, OfflineMutator(), store,
                                LoopConfig(iterations=8, seed=4, target_streak=10**6))
            summary = await loop.run()
        runs.append([(step.family, step.description, step.score) for step in summary.history])
    assert runs[0] == runs[1]
    assert {family for family, _, _ in runs[0]} <= {"model", "structural", "perturb"}


async def peer_attempts(problem: Problem, evaluator: Evaluator, path: Path) -> list[Experiment]:
    """A peer's baseline and two attempts at `problem`, from its own store at `path`."""
    with RecordStore.open(path) as peer_store:
        peer = ResearchLoop(problem, evaluator.evaluate, OfflineMutator(), peer_store,
                            LoopConfig(iterations=2, seed=1, author="peer"))
        await peer.run()
        return [r for r in peer_store.iter_records(kind="experiment")
                if isinstance(r, Experiment)]


async def test_an_offer_made_while_the_history_loads_waits_for_it(
    runtime: Runtime, tmp_path: Path
) -> None:
    """`swarm join` loads a problem's history in a worker thread while intake offers the
    experiments it syncs from the trio thread: both at once counted an experiment twice in the
    search's memory. An offer made meanwhile waits, and is taken once the load is done."""
    import threading

    problem = load_package(EXAMPLES / "finance_factors")
    with Evaluator(runtime, problem) as evaluator:
        theirs = await peer_attempts(problem, evaluator, tmp_path / "peer.sqlite")
        with RecordStore.open(tmp_path / "mine.sqlite") as store:
            loop = ResearchLoop(problem, evaluator.evaluate, OfflineMutator(), store,
                                LoopConfig(iterations=1, seed=2), informs=lambda e: True)
            search = loop.search
            assert search is not None
            loading, release = threading.Event(), threading.Event()
            load = loop._load_history

            def slow_load() -> None:
                loading.set()
                release.wait()
                load()

            loop._load_history = slow_load  # type: ignore[method-assign]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(loop.prepare)
                await trio.to_thread.run_sync(loading.wait)
                try:
                    for experiment in theirs:
                        loop.offer_data(experiment)
                        loop.offer_data(experiment)  # intake may offer one twice
                    taken = [e.id for e in theirs if search.memory.holds(e.id)]
                finally:
                    release.set()  # else a failure here leaves the load's thread waiting
            assert taken == []  # not while the history loaded
            assert all(search.memory.holds(e.id) for e in theirs)
            structure = next(iter(search.memory.structures.values()))
            observed = [o for o in structure.observations]
            # Each of theirs once, and our baseline.
            assert len(observed) == len(theirs) + 1
