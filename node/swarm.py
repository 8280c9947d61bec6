"""A swarm node: researches its problems, takes in peers' records, replays claims before
trusting them, and shares what it finds. Written against `Network`, so it runs on libp2p and
on the in-memory network alike."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import OrderedDict
from collections.abc import Callable

import trio

from node.catalogue import Catalogue
from node.faults import inflated_claim
from node.identity import Identity, sign_record
from node.knowledge import DerivedGate, NodeKnowledge, evidence_rule
from node.leaderboard import note_verifications
from node.loop import ResearchLoop, Sealed, Step
from node.mutators import Mutator
from node.net import DecodedMessages, Network, Outbox, SyncService, problem_topic, topic_of
from node.spot_retries import SpotRetries
from node.store import RecordStore
from node.swarm_claims import ClaimReplays, _arrival_order
from node.swarm_config import Evaluate, EvaluatorFactory, NodeConfig, NodeStats
from node.swarm_intake import NodeIntake, NotYet
from node.trust import Ledger, PendingClaims, ReplayBudget
from research_dag import (
    Budget,
    Experiment,
    ModelLimits,
    Problem,
    Record,
)

__all__ = ["Evaluate", "EvaluatorFactory", "NodeConfig", "NodeStats", "SwarmNode"]



class SwarmNode(NodeIntake, ClaimReplays):
    """One node. `research_round` is one unit of work: an evaluation of its own, the replays
    its budget allows, and one publish per topic. `swarm join` repeats it; the simulator
    drives it round by round. Taking records in is node/swarm_intake.py's, replaying peers'
    claims node/swarm_claims.py's."""

    def __init__(
        self,
        identity: Identity,
        network: Network,
        store: RecordStore,
        evaluator_for: EvaluatorFactory,
        mutator: Mutator,
        config: NodeConfig,
        decoded: DecodedMessages | None = None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.identity = identity
        self.me = identity.peer_id
        self.network = network
        self.store = store
        self.evaluator_for = evaluator_for
        self.mutator = mutator
        self.config = config
        self.dag = store.load_dag(cache=config.dag_cache)
        self.dropped = store.dropped_ids()  # deleted by `swarm gc`: never taken in again
        self.ledger = Ledger(me=self.me, config=config.trust)
        self.budget = ReplayBudget(config.trust.replay_ratio, config.trust.replay_burst)
        self.stats = NodeStats()
        self.loops: dict[str, ResearchLoop] = {}
        self._evaluate: dict[str, Evaluate] = {}
        # Adoption candidates (beat our best), best first; and the sample of other claimed
        # improvements, oldest first (docs/protocol.md section 9).
        self.claims = PendingClaims(config.replay_queue, self._rank)
        self.samples = PendingClaims(config.trust.sample_queue, _arrival_order)
        # Model-backed claims whose spot check could not run: their retries (node/spot_retries)
        self.spot_retries = SpotRetries(config.trust.spot_attempts,
                                        config.trust.spot_backoff_rounds)
        self._round = 0  # research and catch-up rounds so far: the clock of expiry and decay
        self.outbox = Outbox(network)
        self.fakes: set[str] = set()  # ids of claims this node forged (liar fault only)
        self._turn = 0
        self._intakes = 0
        self.room = True  # the disk has room for peers' records (node/swarm_intake.py)
        self._full_until = 0.0
        # Ids being stored by an intake right now: a second intake of the same records (two
        # sync passes overlap when a node joins) skips them instead of storing them twice.
        self._storing: set[str] = set()
        # Experiments not held that stored verifications vote on (bounded): their votes are
        # noted when the experiment comes (node/swarm_intake.py).
        self._orphan_votes: OrderedDict[str, None] = OrderedDict()
        self._nursery: trio.Nursery | None = None
        self._topics: set[str] = set()
        # The clock of this node's experiments (`created_ms`); a simulation passes one counted
        # in rounds, so that records, their ids and every order by (created_ms, id) are the
        # same in every run of a seed.
        self.now_ms = now_ms
        # Held while a derivation reads the DAG and the ledger in a worker thread: intake
        # stores meanwhile but indexes only afterwards (a derivation read a DAG that grew
        # under it, so the same history derived different playbooks run to run).
        self._deriving = trio.Lock()
        # What `_validate` decoded, for `receive`; a simulation passes one shared by all nodes.
        self.decoded = DecodedMessages() if decoded is None else decoded
        self.sync = SyncService(network, self, self.decoded, self.stats.drops)
        # Strangers' problems held, bounded (node/catalogue.py); counted from what is stored.
        chosen = () if config.problems == "all" else config.problems
        self.not_yet = NotYet(lambda: self.now_ms())  # records dated ahead, until due
        self.catalogue = Catalogue(self.me, frozenset(chosen), self.known_problems(),
                                   config.max_problems_held, config.max_problem_bytes)
        self._restored = False  # the ledger as the stored verifications leave it (`serve`)
        self.knowledge = NodeKnowledge(self.dag, evidence_rule(self.dag, self.ledger))
        self.refused = DerivedGate(self.knowledge)  # peers' derived records not derived here

    # ----- state ---------------------------------------------------------------------------

    async def restore_ledger(self) -> None:
        """Note every stored verification in the ledger and restore our own replays' effect on
        their authors, once, before `serve` takes anything in. Read in a worker thread, a page
        at a time: their number and size are peers' choice (2,000 maximal ones held the event
        loop 3.2 s at every start, while bootstrap peers were already connected and pinging:
        bench/event_loop/node_startup.py). Nothing else touches the ledger until it returns."""
        if self._restored:
            return
        replays = await trio.to_thread.run_sync(note_verifications, self.dag, self.ledger,
                                                None, self._orphaned)
        for claimed, matched in replays:  # on the trio thread: it adjusts gossip scores
            self._record_replay(claimed, matched)
        self._restored = True

    def known_problems(self) -> list[Problem]:
        return [p for p in self.dag.problems() if isinstance(p, Problem)]

    def _wanted(self, problem: Problem) -> bool:
        chosen = self.config.problems
        if chosen != "all":
            return problem.id in chosen
        return problem.author == self.me or (
            _within(problem.budget, self.config.max_budget)
            and _model_within(problem.model, self.config.max_model))

    def best(self, problem_id: str) -> Experiment | None:
        loop = self.loops.get(problem_id)
        return None if loop is None else loop.best

    # ----- research -------------------------------------------------------------------------

    async def join_problems(self) -> None:
        """Start loops on wanted problems, up to `max_problems`, fewest workers first. Runs
        every round: it counts workers (every header of a problem's history: 0.6-0.9 s for
        50,000 experiments) only when there is a choice to make."""
        free = self.config.max_problems - len(self.loops)
        if free <= 0:
            return
        candidates = sorted((p for p in self.known_problems()
                             if self._wanted(p) and p.id not in self.loops), key=lambda p: p.id)
        if len(candidates) > free:
            candidates.sort(key=lambda p: self._workers(p.id))  # stable: ties by id
        joined: list[Problem] = []
        for problem in candidates[:free]:
            evaluate = self.evaluator_for(problem)
            loop = ResearchLoop(
                problem,
                evaluate,
                self.mutator,
                self.store,
                dataclasses.replace(self.config.loop, author=self.me),
                on_record=lambda record: self._share(record),
                trusted=self.ledger.trusted,
                informs=self._informs,
                seal=self._seal,
                now_ms=self.now_ms,
                knowledge=functools.partial(self.knowledge.for_problem, problem.id),
            )
            self._evaluate[problem.id] = evaluate
            self.loops[problem.id] = loop
            await loop.prepare()
            await self._subscribe(problem_topic(problem.id))
            joined.append(problem)
        if joined:  # gossip before we subscribed never reached us: pull that history now
            await self.sync_with_peers()
            for problem in joined:  # every problem joined, not only the last one
                await self._consider_history(problem.id)
            await self.curate()  # start from what the history shows, not cold

    def _workers(self, problem_id: str) -> int:
        return len(self.dag.authors(problem_id))

    def _seal(self, record: Sealed) -> Sealed:
        sealed = sign_record(record, self.identity)
        assert isinstance(sealed, type(record))
        return sealed

    def _informs(self, experiment: Experiment) -> bool:
        """May a peer's experiment be the search model's data? Only when its author vouches
        (our replays reproduced a claim of theirs): a fresh identity's forged scores would
        otherwise steer where every node spends its evaluations (docs/search.md)."""
        return self.ledger.vouches(experiment.author)

    def _share(self, record: Record) -> None:
        """Queue a record for this round's publish, on the topic peers listen to for it."""
        self.dag.add(record)
        topic = topic_of(record, self.dag)
        if topic is not None:
            self.outbox.add(topic, record)

    async def research_round(self, publish: bool = True) -> Step | None:
        """One own evaluation (round-robin over joined problems), replays, one publish (a
        simulation passes publish=False and flushes every node afterwards, in a fixed order,
        so that no node hears a peer's round while its own is still running)."""
        await self.join_problems()
        # Replays first: a claim that reproduces is adopted before we mutate, so this round's
        # change builds on the freshest verified best (one round per improvement, not two).
        await self.replay_claims()
        step: Step | None = None
        if self.loops:
            ids = sorted(self.loops)
            loop = self.loops[ids[self._turn % len(ids)]]
            self._turn += 1
            result = await loop.step()
            if isinstance(result, Step):
                step = result
                self.stats.evaluations += 1
                self.budget.earn()
                if self.config.liar:
                    self._lie(loop, result)
        if self.knowledge.due(self._round, self.config.curate_every):
            await self.curate()
        if publish:
            await self.flush()
        return step

    def _lie(self, loop: ResearchLoop, step: Step) -> None:
        """Fault injection: claim a much better score for the last candidate than it got."""
        fake = inflated_claim(self.dag.get(step.experiment_id), loop.metric.direction)
        if fake is not None:
            forged = self._seal(fake)
            self.fakes.add(forged.id)
            self._share(forged)

    async def catch_up(self) -> None:
        """A round without research (idle time is replay time): replay one pending claim,
        publish."""
        self.budget.earn()
        await self.replay_claims()
        if self.knowledge.due(self._round, self.config.curate_every):
            await self.curate()
        await self.flush()

    async def curate(self) -> int:
        """Derive the playbook from our DAG (node/knowledge.py); store and share what is new,
        like our own records. Returns how many records that is."""
        # In a worker thread: a large DAG takes a second and more, and each new problem's
        # baseline is analysed once (a 256 KB strategy: ~4.5 s), never on the event loop.
        async with self._deriving:
            derived = await trio.to_thread.run_sync(self.knowledge.derive,
                                                    abandon_on_cancel=True)
            new = self.knowledge.install(derived)
        self._storing.update(record.id for record in new)  # an intake meanwhile skips them
        try:
            await trio.to_thread.run_sync(self.store.add_many, new)
        finally:
            self._storing.difference_update(record.id for record in new)
        for record in new:
            self._share(record)
        self.stats.derived += len(new)
        return len(new)

    async def flush(self) -> None:
        """Publish what this round produced: batched, one message per topic and batch."""
        self.stats.published += await self.outbox.flush()

    async def pose(self, problem: Problem) -> Problem:
        """Publish a problem (signed) so that peers can join it."""
        signed = sign_record(problem, self.identity)
        assert isinstance(signed, Problem)
        self.sync.watch(signed.id)  # `sync.served` says when a peer has fetched it
        await trio.to_thread.run_sync(self.store.add, signed)
        self.dag.add(signed)
        self._share(signed)
        await self.flush()
        return signed


def _model_within(limits: ModelLimits | None, cap: ModelLimits | None) -> bool:
    if limits is None or cap is None:
        return True
    return (limits.max_calls <= cap.max_calls and limits.max_tokens <= cap.max_tokens
            and limits.max_prompt_bytes <= cap.max_prompt_bytes)


def _within(budget: Budget, cap: Budget | None) -> bool:
    if cap is None:
        return True
    return (budget.fuel <= cap.fuel and budget.memory_mb <= cap.memory_mb
            and budget.wall_s <= cap.wall_s)
