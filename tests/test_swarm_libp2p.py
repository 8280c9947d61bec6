"""The swarm on real libp2p hosts on 127.0.0.1: a posed problem reaches the others, nodes
improve it and converge, a late joiner syncs the full history, a liar's claims are disputed,
and a `swarm join` process killed with SIGKILL restarts with no record lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from node.identity import Identity, load_or_create, sign_record
from node.loop import LoopConfig
from node.mutators import OfflineMutator
from node.net.libp2p import Libp2pNetwork, open_libp2p_network
from node.net.network import PROBLEMS_TOPIC, problem_topic
from node.sim import settle
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Experiment, Problem
from sandbox import Evaluator, Runtime

STEP_S = 20.0


@asynccontextmanager
async def _node(index: int, path: Path, runtime: Runtime, bootstrap: list[str] | None = None,
                liar: bool = False) -> AsyncIterator[SwarmNode]:
    identity = Identity.from_seed(bytes([index + 40]) * 32)
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(
            open_libp2p_network(identity.private_key, bootstrap=bootstrap or ())
        )
        store = stack.enter_context(RecordStore.open(path / f"{index}.sqlite"))

        def evaluator_for(problem: Problem):  # type: ignore[no-untyped-def]
            return stack.enter_context(Evaluator(runtime, problem)).evaluate

        node = SwarmNode(identity, network, store, evaluator_for, OfflineMutator(),
                         NodeConfig(loop=LoopConfig(seed=index), liar=liar))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


async def _mesh(publisher: SwarmNode, topic: str, *others: SwarmNode) -> None:
    network = publisher.network
    assert isinstance(network, Libp2pNetwork)
    with trio.fail_after(STEP_S):
        for other in others:
            await network.wait_mesh(other.me, topic)


async def _settle(*nodes: SwarmNode) -> None:
    await settle(None, nodes, cushion=0.1)


async def test_three_libp2p_nodes_share_improve_converge_and_dispute_a_liar(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    async with _node(0, tmp_path, runtime) as a:
        addr = a.network.listen_addrs()
        async with _node(1, tmp_path, runtime, addr) as b, \
                _node(2, tmp_path, runtime, addr, liar=True) as liar:
            await _mesh(a, PROBLEMS_TOPIC, b, liar)
            posed = await a.pose(probe_problem)
            with trio.fail_after(STEP_S):
                while not all(posed.id in n.dag for n in (b, liar)):
                    await trio.sleep(0.05)  # gossip delivery, bounded
            for node in (a, b, liar):
                await node.join_problems()
            await _mesh(a, problem_topic(posed.id), b, liar)
            for _ in range(8):
                for node in (a, b, liar):
                    await node.research_round()
                await _settle(a, b, liar)
            for _ in range(3):
                for node in (a, b):
                    await node.catch_up()
                await _settle(a, b, liar)
            best_a, best_b = a.best(posed.id), b.best(posed.id)
            assert best_a is not None and best_b is not None
            assert best_a.outcome.score == best_b.outcome.score  # converged
            assert best_a.outcome.score is not None and best_a.outcome.score > 1.0
            assert liar.fakes, "the liar made claims"
            for honest in (a, b):
                assert not any(honest.ledger.my_replays.get(f) for f in liar.fakes)
                assert honest.stats.disputes > 0
                assert honest.ledger.standing_of(liar.me) < 0
                adopted = honest.best(posed.id)
                assert adopted is not None and adopted.id not in liar.fakes
            # signed records: a derived one is taken in only when derived here
            history = {r.id for r in b.dag.records() if r.signature}
            # a late joiner, bootstrapping from b after the others' work, gets the history
            async with _node(3, tmp_path, runtime, b.network.listen_addrs()) as late:
                with trio.fail_after(STEP_S):
                    while not history <= {r.id for r in late.dag.records()}:
                        await trio.sleep(0.05)  # sync on connect, bounded
                await late.join_problems()
                assert len(late.dag.experiments(posed.id)) >= 18


def _swarm(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from node.cli import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )


def _read_keeps(process: subprocess.Popen[str], count: int) -> list[str]:
    assert process.stdout is not None
    keeps = []
    for line in process.stdout:  # wait for real progress, not for a sleep
        if line.startswith("keep"):
            keeps.append(line.split()[1])
            if len(keeps) == count:
                return keeps
    process.wait(timeout=30)
    stderr = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"swarm join exited {process.returncode} after {keeps}: {stderr}")


def test_a_node_killed_with_sigkill_restarts_with_no_record_lost(
    probe_problem: Problem, tmp_path: Path
) -> None:
    data = tmp_path / "node"
    identity = load_or_create(data / "identity.key")
    with RecordStore.open(data / "records.sqlite") as store:  # a problem to work on
        posed = sign_record(probe_problem, identity)
        store.add(posed)
    # --no-mdns: other engineers' or CI jobs' nodes on this loopback are not this test's peers
    args = ("join", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--data-dir", str(data))
    first = _swarm(*args)
    keeps = _read_keeps(first, 2)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    with RecordStore.open(data / "records.sqlite") as store:
        before = {r.id: r for r in store.iter_records()}  # every record decodes and verifies
    assert any(record_id.startswith(keeps[-1]) for record_id in before)
    second = _swarm(*args)
    _read_keeps(second, 1)
    second.send_signal(signal.SIGINT)
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 130, stderr
    with RecordStore.open(data / "records.sqlite") as store:
        after = {r.id: r for r in store.iter_records()}
    assert set(before) <= set(after)
    mine = [r for r in after.values() if isinstance(r, Experiment) and r.problem == posed.id]
    assert sum(1 for e in mine if e.parent is None) == 1  # resumed: no second baseline
    assert len(after) > len(before)
