"""The local multi-node simulator: N swarm nodes in one trio process on the in-memory network
or real libp2p on 127.0.0.1, driven in evaluation rounds, with injected faults."""

from __future__ import annotations

import contextlib
import functools
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
import trio.testing

from node.identity import IDENTITY_FILE, Identity, save_identity, sign_record
from node.loop import LoopConfig
from node.model_evaluations import Gateway
from node.mutators import OfflineMutator
from node.net import (
    SHARED_BYTES,
    SHARED_MESSAGES,
    DecodedMessages,
    MemoryHub,
    NetworkError,
    problem_topic,
)
from node.sim.config import SimConfig
from node.sim.evaluations import SharedEvaluations
from node.sim.partition import Partition
from node.sim.plan import SimNode, open_network, plan_nodes, settle
from node.sim.report import build_report
from node.sim.results import NodeResult, SimResults, knowledge_measures
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from node.trust import TrustConfig
from research_dag import Problem
from sandbox import Runtime

SETTLE_CUSHION_S = {"memory": 0.0, "libp2p": 0.05}
# The simulated clock: experiments made in round r are dated SIM_EPOCH_MS + r seconds (each
# node's loop keeps its own dates strictly increasing), never by this machine's clock.
SIM_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ROUND_MS = 1000


class Simulation:
    """Runs one simulation; `report()` gives the JSON-ready results."""

    def __init__(
        self,
        config: SimConfig,
        runtime: Runtime,
        on_round: Callable[[int, Simulation], None] | None = None,
        finish: Callable[[Simulation], Awaitable[None]] | None = None,
        gateway: Gateway | None = None,
    ) -> None:
        """`gateway` answers the model calls of a problem that asks a model (every node's
        evaluations and verifications of it); without one such a problem's evaluations fail."""
        if config.nodes < 1 or not config.problems:
            raise ValueError("a simulation needs at least one node and one problem")
        if config.data_dir is not None and (config.data_dir / "records.sqlite").exists():
            raise ValueError(f"{config.data_dir} already holds a store: give a new directory")
        self.config = config
        self.evaluations = SharedEvaluations(runtime, gateway)
        # Decoding is pure: every node meets the same messages, so one decode serves them all.
        self.decoded = DecodedMessages(SHARED_MESSAGES, SHARED_BYTES)
        self.on_round = on_round
        # Awaited after the last round, while the nodes and their stores are still open (the
        # dashboard and the report read node 0's store).
        self.finish = finish
        self.plan = plan_nodes(config)
        self.hub = MemoryHub(seed=config.seed, fanout=config.degree if config.nodes > 50 else None)
        self.rounds_run = 0
        self.history: list[dict[str, Any]] = []
        self.fakes: set[str] = set()
        self.baseline: float | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="swarm-sim-")
        self._down_events: dict[int, trio.Event] = {}
        # Problems as node 0 poses them: signed, so their ids are the ones the swarm uses.
        self.problems = [_signed(p, self.plan[0].identity) for p in config.problems]
        self._up_events: dict[int, trio.Event] = {}
        # Set when a node brought back this round is serving again and connected: its restart
        # waits on a worker thread (the ledger's restore), which `wait_all_tasks_blocked`
        # counts as blocked, so who worked a round depended on that thread's timing.
        self._back: dict[int, trio.Event] = {}
        self.partition = Partition([sim.identity.peer_id for sim in self.plan])
        self.knowledge: dict[str, Any] = {}  # measured when the last round is done
        # Why the rounds ended: "target_reached", "rounds", or the reason given to `stop`.
        self.stop_reason = ""

    @property
    def problem(self) -> Problem:
        return self.problems[0]

    def _now_ms(self) -> int:
        """The simulated clock: the round being run (see SIM_EPOCH_MS)."""
        return SIM_EPOCH_MS + (self.rounds_run + 1) * ROUND_MS

    async def run(self) -> dict[str, Any]:
        try:
            async with trio.open_nursery() as nursery:
                for sim in self.plan:
                    await nursery.start(self._host, sim)
                await self._connect()
                await self._pose(0)
                await self._settle()
                await self._join_all()
                await self._rounds(nursery)
                self.knowledge = self._knowledge()  # while the nodes and stores are open
                if self.finish is not None:
                    await self.finish(self)
                nursery.cancel_scope.cancel()
        finally:
            self.evaluations.close()
            self._tmp.cleanup()
        return self.report()

    async def _pose(self, round_index: int) -> None:
        """Node 0 poses the problems due by this round: all at the start, or one every
        `pose_every` rounds in the order given."""
        every = self.config.pose_every
        poser = self.plan[0].node
        assert poser is not None
        for index, problem in enumerate(self.problems):
            if (round_index == 0 and every <= 0) or index * max(every, 0) == round_index:
                await poser.pose(problem)

    async def _join_all(self) -> None:
        """Every node joins the problems posed so far, one at a time in index order. A join
        evaluates the baseline and pulls the problem's history from the peers: inside the
        first research round it ran beside the others' work, so what it pulled (a peer's
        baseline only, or already its first improvement, adopted at once) depended on
        worker-thread timing, and 16-node runs of one seed diverged from round 1."""
        for sim in self.plan:
            if sim.node is not None:
                await sim.node.join_problems()
                await self._settle()

    def _store_path(self, sim: SimNode) -> Path:
        """Node 0's store in `data_dir` when one is given (with its identity, so `swarm dag
        --data-dir` browses it as node 0); every other store in the temporary directory."""
        kept = self.config.data_dir
        if sim.index != 0 or kept is None:
            return Path(self._tmp.name) / f"node-{sim.index}.sqlite"
        kept.mkdir(parents=True, exist_ok=True)
        save_identity(kept / IDENTITY_FILE, sim.identity)
        return kept / "records.sqlite"

    async def _host(self, sim: SimNode, *, task_status: trio.TaskStatus[None]) -> None:
        """One node's lifetime: network, store and serve; restarts after churn."""
        first = True
        while True:
            down = trio.Event()
            async with open_network(self.config.network, self.hub, sim.identity) as network:
                if self.partition.active:  # restarted mid-partition: still on its side
                    await network.block(self.partition.other_half(sim.index))
                store = RecordStore.open(self._store_path(sim), durable=False)
                try:
                    node = SwarmNode(
                        sim.identity,
                        network,
                        store,
                        self.evaluations.evaluator_for,
                        OfflineMutator(),
                        NodeConfig(
                            trust=TrustConfig(k=self.config.k),
                            loop=LoopConfig(seed=self.config.seed * 1000 + sim.index),
                            liar=sim.liar,
                            max_problems=self.config.max_problems,
                            max_budget=None,  # the operator chose these problems
                        ),
                        self.decoded,
                        now_ms=self._now_ms,
                    )
                    async with trio.open_nursery() as nursery:
                        await nursery.start(node.serve)
                        sim.node = node
                        self._down_events[sim.index] = down
                        if first:
                            task_status.started()
                            first = False
                        else:
                            await self._join(sim)
                            self._back.setdefault(sim.index, trio.Event()).set()
                        await down.wait()
                        nursery.cancel_scope.cancel()
                finally:
                    sim.node = None
                    store.close()
            back = self._up_events.setdefault(sim.index, trio.Event())
            await back.wait()
            self._up_events.pop(sim.index, None)

    async def _connect(self) -> None:
        rng = random.Random(self.config.seed + 1)
        for sim in self.plan[1:]:
            await self._join(sim, rng)

    async def _join(self, sim: SimNode, rng: random.Random | None = None) -> None:
        node = sim.node
        assert node is not None
        rng = rng or random.Random(self.config.seed + sim.index)
        others = [s for s in self.plan if s.index != sim.index and s.node is not None]
        earlier = [s for s in others if s.index < sim.index] or others
        for peer in rng.sample(earlier, min(len(earlier), max(1, self.config.degree // 2))):
            assert peer.node is not None
            with contextlib.suppress(NetworkError):  # a failed dial is a fault, not a bug
                await node.network.connect(peer.node.network.listen_addrs()[0])

    async def _settle(self) -> None:
        nodes = [sim.node for sim in self.plan if sim.node is not None]
        hub = self.hub if self.config.network == "memory" else None
        await settle(hub, nodes, SETTLE_CUSHION_S[self.config.network])

    async def _rounds(self, nursery: trio.Nursery) -> None:
        config = self.config
        start_partition = config.rounds // 4
        for round_index in range(1, config.rounds + 1):
            started = time.perf_counter()
            if await self._apply_faults(round_index, start_partition):
                # A node went down or came back: its shutdown, or its restart and first sync,
                # ends before anyone works (else who works this round would depend on timing).
                for back in list(self._back.values()):
                    await back.wait()
                self._back.clear()
                await trio.testing.wait_all_tasks_blocked()
                await self._settle()
            if config.pose_every > 0 and round_index % config.pose_every == 0:
                await self._pose(round_index)
                await self._settle()
                await self._join_all()
            up = [sim for sim in self.plan if sim.node is not None]
            # Every node works at once (evaluations run in worker threads), hearing nothing of
            # this round until all are done; then each publishes in turn, in index order: what
            # a node hears, and in what order, is the same in every run of a seed.
            async with trio.open_nursery() as work:
                for sim in up:
                    assert sim.node is not None
                    work.start_soon(functools.partial(sim.node.research_round, publish=False))
            for sim in up:
                if sim.node is None:
                    continue
                await sim.node.flush()
                if sim.spammer:
                    with contextlib.suppress(NetworkError):
                        await sim.node.network.publish(
                            problem_topic(self.problem.id), b"\x00garbage" * 8
                        )
            await self._settle()
            if round_index % config.sync_every == 0:
                # One node at a time: a pass run alongside others' would copy from each peer
                # whatever it happened to hold at that instant.
                for sim in up:
                    if sim.node is not None:
                        await sim.node.sync_with_peers()
                        await self._settle()
            self.rounds_run = round_index
            self._measure(round_index, time.perf_counter() - started)
            if self.on_round:
                self.on_round(round_index, self)
            if self.stop_reason:  # `stop` was called (by on_round: a spent model budget)
                return
            if config.stop_at_target and self._all_honest_reached():
                self.stop_reason = "target_reached"
                return
        self.stop_reason = "rounds"

    def stop(self, reason: str) -> None:
        """End the run after the round being run, as if it were the last: it is measured,
        `finish` still runs, and the report's `stop_reason` is `reason`."""
        self.stop_reason = self.stop_reason or reason

    async def _apply_faults(self, round_index: int, start_partition: int) -> bool:
        """Split or heal the swarm, take nodes down or bring them back, as planned for this
        round; whether any node went down or came back."""
        faults = self.config.faults
        churned = False
        up = {sim.index: sim.node.network for sim in self.plan if sim.node is not None}
        if faults.partition and round_index == start_partition:
            await self.partition.split(up)
        elif faults.partition and round_index == start_partition + faults.partition:
            await self.partition.heal(up)
        down_for = max(2, self.config.rounds // 10)
        for sim in self.plan:
            if sim.churn_at == round_index and sim.node is not None:
                self._down_events[sim.index].set()
                churned = True
            if sim.churn_at is not None and round_index == sim.churn_at + down_for:
                self._back[sim.index] = trio.Event()
                self._up_events.setdefault(sim.index, trio.Event()).set()
                churned = True
        return churned

    def _measure(self, round_index: int, seconds: float) -> None:
        metric = self.problem.metric
        if self.baseline is None:
            for sim in self.plan:
                loop = None if sim.node is None else sim.node.loops.get(self.problem.id)
                if loop is not None and loop.summary is not None:
                    self.baseline = loop.summary.baseline_score
                    break
        for sim in self.plan:
            score = None
            if sim.node is not None:
                best = sim.node.best(self.problem.id)
                score = None if best is None else best.outcome.score
                if sim.liar:
                    self.fakes |= sim.node.fakes
            elif sim.best:
                score = sim.best[-1]
            sim.best.append(score)
            if sim.reached is None and score is not None and metric.reached(score):
                sim.reached = round_index
        honest = [s.best[-1] for s in self.plan if not s.liar and s.best[-1] is not None]
        nodes = [s.node for s in self.plan if s.node is not None]
        self.history.append(
            {
                "round": round_index,
                "swarm_best": _best(honest, metric.direction),
                "messages": sum(n.stats.published for n in nodes),
                "verifications": sum(n.stats.replays for n in nodes),
                "disputes": sum(n.stats.disputes for n in nodes),
                "evaluations": self.evaluations.runs,
                "fuel": self.evaluations.fuel,
                "up": len(nodes),
                # Wall-clock time of the round (faults, research, publish, settle, sync): the
                # one entry that differs between two runs of a seed.
                "seconds": round(seconds, 4),
            }
        )

    def _all_honest_reached(self) -> bool:
        if self.problem.metric.target is None:
            return False
        return all(sim.reached is not None for sim in self.plan if not sim.liar)

    def accepted_fake_claims(self) -> int:
        accepted = 0
        for sim in self.plan:
            if sim.liar or sim.node is None:
                continue
            ledger = sim.node.ledger
            accepted += sum(1 for fake in self.fakes if ledger.my_replays.get(fake) is True)
        return accepted

    def results(self) -> SimResults:
        """What this simulation measured so far, as plain values (no live nodes)."""
        return SimResults(
            config=self.config,
            problem=self.problem,
            rounds_run=self.rounds_run,
            nodes=tuple(
                NodeResult(
                    index=sim.index,
                    peer_id=sim.identity.peer_id,
                    liar=sim.liar,
                    spammer=sim.spammer,
                    churned=sim.churn_at is not None,
                    best_by_round=sim.best,
                    reached_target_round=sim.reached,
                )
                for sim in self.plan
            ),
            baseline=self.baseline,
            history=self.history,
            fake_claims=len(self.fakes),
            accepted_fake_claims=self.accepted_fake_claims(),
            knowledge=self.knowledge,
            stop_reason=self.stop_reason,
        )

    def _knowledge(self) -> dict[str, Any]:
        """What the honest node holding the most records knows at the end (its DAG is the
        swarm's, up to what gossip has not delivered yet), derived afresh from that DAG."""
        honest = [sim for sim in self.plan if not sim.liar and sim.node is not None]
        if not honest:
            return {}
        sim = max(honest, key=lambda s: (len(s.node.dag) if s.node else 0, -s.index))
        assert sim.node is not None
        sim.node.knowledge.curate()
        measures = knowledge_measures(sim.index, sim.node.dag, sim.node.knowledge.counts_of())
        # Every problem's verified best as that node sees it (the report's figures follow the
        # first problem only).
        bests = []
        for problem in self.problems:
            best = sim.node.dag.best(problem.id, sim.node.ledger.verified)
            bests.append({"name": problem.name, "direction": problem.metric.direction,
                          "target": problem.metric.target,
                          "best": None if best is None else best.outcome.score})
        measures["problems"] = bests
        return measures

    def report(self) -> dict[str, Any]:
        return build_report(self.results())


def _signed(problem: Problem, identity: Identity) -> Problem:
    signed = sign_record(problem, identity)
    assert isinstance(signed, Problem)
    return signed


def _best(scores: list[float], direction: str) -> float | None:
    if not scores:
        return None
    return max(scores) if direction == "maximize" else min(scores)
