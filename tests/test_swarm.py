"""Swarm nodes on the in-memory network: a posed problem spreads, nodes improve it and
converge, late joiners sync the full history, liars are disputed, restarts lose nothing."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio

from node.identity import Identity, sign_record
from node.loop import LoopConfig
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.net.wire import (
    SyncSummary,
    SyncSummaryRequest,
    decode_sync_response,
    encode_sync_request,
)
from node.sim import Faults, SimConfig, Simulation, settle
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from node.trust import Ledger, PendingClaims
from research_dag import Experiment, Outcome, Problem, Verification
from sandbox import Evaluator, Runtime


def _identity(index: int) -> Identity:
    return Identity.from_seed(bytes([index + 1]) * 32)


@asynccontextmanager
async def _node(
    hub: MemoryHub, index: int, path: Path, runtime: Runtime, liar: bool = False
) -> AsyncIterator[SwarmNode]:
    identity = _identity(index)
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(hub.open_node(identity.peer_id))
        store = stack.enter_context(RecordStore.open(path / f"{index}.sqlite"))
        evaluators: dict[str, Evaluator] = {}

        def evaluator_for(problem: Problem):  # type: ignore[no-untyped-def]
            evaluators[problem.id] = stack.enter_context(Evaluator(runtime, problem))
            return evaluators[problem.id].evaluate

        node = SwarmNode(identity, network, store, evaluator_for, OfflineMutator(),
                         NodeConfig(loop=LoopConfig(seed=index), liar=liar))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


async def _settle(hub: MemoryHub, *nodes: SwarmNode) -> None:
    await settle(hub, nodes)


async def test_a_posed_problem_spreads_and_nodes_converge(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=1)
    async with _node(hub, 0, tmp_path, runtime) as a, _node(hub, 1, tmp_path, runtime) as b, \
            _node(hub, 2, tmp_path, runtime) as c:
        await b.network.connect(a.network.listen_addrs()[0])
        await c.network.connect(b.network.listen_addrs()[0])  # c hears a only through b
        await _settle(hub, a, b, c)
        posed = await a.pose(probe_problem)
        await _settle(hub, a, b, c)
        assert all(posed.id in node.dag for node in (b, c))
        for _ in range(12):
            for node in (a, b, c):
                await node.research_round()
            await _settle(hub, a, b, c)
        for _ in range(2):  # quiet rounds: the last claims get replayed and adopted
            for node in (a, b, c):
                await node.catch_up()
            await _settle(hub, a, b, c)
        bests = [node.best(posed.id) for node in (a, b, c)]
        assert all(best is not None for best in bests)
        scores = [best.outcome.score for best in bests if best is not None]
        assert scores[0] is not None and scores[0] > 1.0  # improved on the baseline (1.0)
        assert len(set(scores)) == 1  # converged on the same best score
        assert sum(node.stats.adopted for node in (a, b, c)) > 0  # by adopting, after replay
        # every signed record anyone made reached everyone; derived ones are each node's own (a
        # peer's is taken in only when derived here: tests/test_redteam_knowledge.py)
        signed = [{r.id for r in node.dag.records() if r.signature} for node in (a, c)]
        assert signed[0] == signed[1]
        for node in (a, b, c):  # and was stored before it was indexed (intake is batched)
            assert {r.id for r in node.store.iter_records()} >= {r.id for r in node.dag.records()}


async def test_a_late_joiner_syncs_the_full_history(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=2)
    async with _node(hub, 0, tmp_path, runtime) as a:
        posed = await a.pose(probe_problem)
        for _ in range(5):
            await a.research_round()
        history = {r.id for r in a.dag.records()}
        async with _node(hub, 3, tmp_path, runtime) as late:
            await late.network.connect(a.network.listen_addrs()[0])
            await _settle(hub, a, late)  # sync runs on connect
            assert {r.id for r in late.dag.records()} >= history
            assert len(late.dag.experiments(posed.id)) == 6  # baseline + 5 attempts
            await late.research_round()  # joins the problem, replays a's best claim
            await _settle(hub, a, late)
            assert late.stats.adopted == 1
            # The round replays and adopts a's best before mutating, so late's best is a's best
            # or, when that round's own change improved on it, a child of it.
            best, theirs = late.best(posed.id), a.best(posed.id)
            assert best is not None and theirs is not None
            assert best.id == theirs.id or best.parent == theirs.id


async def test_liars_are_disputed_and_never_adopted(
    runtime: Runtime, probe_problem: Problem
) -> None:
    simulation = Simulation(
        SimConfig(nodes=5, problems=(probe_problem,), rounds=8, seed=3,
                  faults=Faults.parse("liars=0.4"), stop_at_target=False),
        runtime,
    )
    report = await simulation.run()
    swarm = report["swarm"]
    assert swarm["fake_claims"] > 0
    assert swarm["disputes"] > 0
    assert swarm["accepted_fake_claims"] == 0
    liars = {n["peer_id"] for n in report["nodes"] if n["liar"]}
    assert len(liars) == 2
    honest_best = [n["best"] for n in report["nodes"] if not n["liar"]]
    assert all(score is not None and score < 1e6 for score in honest_best)


async def test_a_restarted_node_resumes_with_nothing_lost(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=4)
    async with _node(hub, 0, tmp_path, runtime) as a:
        posed = await a.pose(probe_problem)
        for _ in range(4):
            await a.research_round()
        before = {r.id for r in a.dag.records()}
        best = a.best(posed.id)
    async with _node(hub, 0, tmp_path, runtime) as again:
        assert {r.id for r in again.dag.records()} == before
        await again.research_round()
        resumed = again.best(posed.id)
        assert resumed is not None and best is not None
        assert resumed.outcome.score is not None and best.outcome.score is not None
        assert resumed.outcome.score >= best.outcome.score
        mine = [e for e in again.dag.experiments(posed.id) if isinstance(e, Experiment)]
        assert len(mine) == 6  # baseline + 4 + 1: the baseline was not evaluated again


async def _summary(node: SwarmNode) -> set[str]:
    request = encode_sync_request(SyncSummaryRequest())
    summary = decode_sync_response(await node.sync.handle("peer", request))
    assert isinstance(summary, SyncSummary)
    return set(summary.ids)


async def test_a_summary_answered_again_includes_records_taken_since(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=5)
    async with _node(hub, 0, tmp_path, runtime) as a:
        await a.pose(probe_problem)
        first = await _summary(a)
        assert first == {r.id for r in a.dag.records()}
        assert await _summary(a) == first  # answered again from what was built
        await a.research_round()
        again = await _summary(a)
        assert again > first and again == {r.id for r in a.dag.records()}


def test_pending_claims_come_best_first_and_keep_the_best_when_trimmed() -> None:
    def claim(score: float, tag: str) -> Experiment:
        return Experiment(problem="0" * 64, strategy={"strategy.py": f"# {tag}\n"},
                          outcome=Outcome(status="ok", score=score))

    claims = PendingClaims(limit=3, rank=lambda e: e.outcome.score or 0.0)
    tied = [claim(5.0, "first"), claim(5.0, "second")]
    for experiment in (claim(1.0, "low"), *tied, claim(9.0, "high"), claim(2.0, "two")):
        claims.add(experiment)
    assert [e.outcome.score for e in claims.best_first()] == [9.0, 5.0, 5.0, 2.0, 1.0]
    assert claims.best_first()[1:3] == tied  # equal ranks keep their arrival order
    claims.add(claim(3.0, "three"))  # up to twice the limit are held
    assert len(claims) == 6
    claims.add(claim(0.5, "half"))  # past twice the limit: only the best three stay
    assert [e.outcome.score for e in claims.best_first()] == [9.0, 5.0, 5.0]
    claims.discard(tied[0].id)
    assert len(claims) == 2


async def test_a_restart_restores_the_ledger_off_the_event_loop(
    probe_problem: Problem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored verifications (any number, of any size a peer chose: 2,000 maximal ones
    held the event loop 3.2 s at every start) are read and noted in a worker thread before
    `serve` takes anything in: the ledger then holds every vote and our own replays'
    standing, and meanwhile the event loop ran (a note waits for a trio task here)."""
    me, peer, voter = _identity(0), _identity(1), _identity(2)
    claim = sign_record(Experiment(problem=probe_problem.id, strategy={"strategy.py": "x = 1\n"},
                                   outcome=Outcome(status="ok", score=2.0)), peer)
    replay = sign_record(Verification(experiment=claim.id, outcome=claim.outcome, match=True),
                         me)
    vote = sign_record(Verification(experiment=claim.id, outcome=claim.outcome, match=True),
                       voter)
    with RecordStore.open(tmp_path / "me.sqlite") as store:
        store.add_many([probe_problem, claim, replay, vote])
    started, release = threading.Event(), threading.Event()
    note = Ledger.note

    def waits(ledger: Ledger, verification: Verification) -> None:
        started.set()
        if not release.wait(30):
            raise AssertionError("the event loop did not run while the ledger was restored")
        note(ledger, verification)

    monkeypatch.setattr(Ledger, "note", waits)
    async with MemoryHub(seed=6).open_node(me.peer_id) as network:
        with RecordStore.open(tmp_path / "me.sqlite") as store:
            node = SwarmNode(me, network, store, lambda p: None, OfflineMutator(),  # type: ignore[arg-type, return-value]
                             NodeConfig())
            assert not node.ledger.votes  # the constructor reads no verification
            released: list[bool] = []

            async def release_the_notes() -> None:  # a trio task, while a note waits
                await trio.to_thread.run_sync(started.wait)
                release.set()
                released.append(True)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(release_the_notes)
                await nursery.start(node.serve)  # ready: the ledger restored, subscribed
                assert released == [True]
                assert node.ledger.my_replays == {claim.id: True}
                assert len(node.ledger.votes[claim.id]) == 2
                assert node.ledger.standing_of(peer.peer_id) > 0
                nursery.cancel_scope.cancel()
