"""A swarm node: researches its problems, takes in peers' records, replays claims before
trusting them, and shares what it finds. Written against `Network`, so it runs on libp2p and
on the in-memory network alike."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import trio

from node.faults import inflated_claim
from node.identity import Identity, sign_record
from node.intake import refusal, strategy_refusal
from node.knowledge import CURATE_EVERY, DerivedGate, NodeKnowledge, evidence_rule
from node.loop import LoopConfig, ResearchLoop, Sealed, Step
from node.model_evaluations import unverifiable
from node.mutators import Mutator
from node.net import (
    PROBLEMS_TOPIC,
    DecodedMessages,
    DropCounter,
    GossipMessage,
    Network,
    Outbox,
    SyncService,
    problem_topic,
    topic_of,
)
from node.store import RecordStore
from node.trust import (
    Ledger,
    ModelCheck,
    ModelVerifier,
    PendingClaims,
    ReplayBudget,
    TrustConfig,
    outcomes_match,
)
from research_dag import (
    DERIVED_AUTHOR,
    MAX_STDERR_TAIL,
    Budget,
    Experiment,
    Header,
    Outcome,
    Problem,
    Record,
    Transcript,
    Verification,
)
from sandbox import Evaluated

# Messages taken in per store transaction: what piled up while the previous batch was written.
INTAKE_BATCH = 256
CONSIDERED_PER_CHECKPOINT = 256  # history claims loaded between event-loop checkpoints
Evaluate = Callable[[Mapping[str, str]], Outcome | Evaluated]
EvaluatorFactory = Callable[[Problem], Evaluate]


@dataclass(frozen=True)
class NodeConfig:
    problems: Literal["all"] | tuple[str, ...] = "all"
    max_problems: int = 3  # problems researched at once
    trust: TrustConfig = field(default_factory=TrustConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    replay_queue: int = 256  # most adoption candidates kept (the best ones)
    liar: bool = False  # simulation fault: publish inflated claims
    # The most a stranger's problem may ask of this machine per evaluation (its fuel, memory
    # and wall time; None: no cap). A record allows 4 GiB and an hour, and a fresh problem is
    # joined first (fewest workers): without a cap, anyone could post problems that take a
    # joining node's memory and time. Our own problems, and ones chosen by id, are exempt.
    max_budget: Budget | None = field(default_factory=Budget)
    # Whole records the node keeps in memory besides problems (the most recently used), and 4x
    # as many headers; every record, header and edge stays in the store (docs/storage.md).
    dag_cache: int = 2048
    curate_every: int = CURATE_EVERY  # rounds between derivations of the playbook (0: never)


@dataclass
class NodeStats:
    evaluations: int = 0
    replays: int = 0
    replay_matches: int = 0
    disputes: int = 0
    adopted: int = 0  # peer experiments adopted as parents after a matching replay
    published: int = 0  # envelopes
    received: int = 0  # records taken in
    ignored: int = 0  # records from authors below the standing floor
    refused: int = 0  # valid records contradicting ones we hold (also in drops: inconsistent)
    sampled: int = 0  # replays of claims that would not improve our best (standing samples)
    expired: int = 0  # queued claims dropped unreplayed after claim_ttl_rounds
    derived: int = 0  # derived records this node made (patterns, hypotheses, verdicts)
    drops: DropCounter = field(default_factory=DropCounter)


class SwarmNode:
    """One node. `research_round` is one unit of work: an evaluation of its own, the replays
    its budget allows, and one publish per topic. `swarm join` repeats it; the simulator
    drives it round by round."""

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
        self._round = 0  # research and catch-up rounds so far: the clock of expiry and decay
        self.outbox = Outbox(network)
        self.fakes: set[str] = set()  # ids of claims this node forged (liar fault only)
        self._turn = 0
        self._intakes = 0
        # Ids being stored by an intake right now: a second intake of the same records (two
        # sync passes overlap when a node joins) skips them instead of storing them twice.
        self._storing: set[str] = set()
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
        self._restore_ledger()
        self.knowledge = NodeKnowledge(self.dag, evidence_rule(self.dag, self.ledger))
        self.refused = DerivedGate(self.knowledge)  # peers' derived records not derived here

    # ----- state ---------------------------------------------------------------------------

    def _restore_ledger(self) -> None:
        for record in self.dag.records("verification"):
            assert isinstance(record, Verification)
            self.ledger.note(record)
            if record.author == self.me:
                claimed = self.dag.get(record.experiment)
                if isinstance(claimed, Experiment):
                    self._record_replay(claimed, record.match)

    def known_problems(self) -> list[Problem]:
        return [p for p in self.dag.problems() if isinstance(p, Problem)]

    def _wanted(self, problem: Problem) -> bool:
        chosen = self.config.problems
        if chosen != "all":
            return problem.id in chosen
        return problem.author == self.me or _within(problem.budget, self.config.max_budget)

    def best(self, problem_id: str) -> Experiment | None:
        loop = self.loops.get(problem_id)
        return None if loop is None else loop.best

    # ----- intake ---------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Taking in records right now (simulations settle until no node is busy)."""
        return self._intakes > 0 or self.sync.decoding > 0

    async def take(self, records: list[Record]) -> int:
        """Store and index records from a peer (already decoded and signature-checked); those
        that contradict a record we hold are refused, counted and charged to their author."""
        self._intakes += 1
        try:
            return await self._take(records)
        finally:
            self._intakes -= 1

    async def _take(self, records: list[Record]) -> int:
        fresh: dict[str, Record] = {}

        def lookup(record_id: str) -> Record | None:  # what we hold, with this batch's earlier
            return fresh.get(record_id) or self.dag.get(record_id)

        def brief(record_id: str) -> Header | None:  # from memory, never a read
            held = fresh.get(record_id)
            if held is not None:
                problem = held.id if isinstance(held, Problem) else getattr(held, "problem", None)
                return Header(held.id, held.kind, held.created_ms, held.author, problem)
            return self.dag.header(record_id)

        for record in records:
            if self.ledger.ignored(record.author):
                self.stats.ignored += 1
            elif (record.id not in self.dag and record.id not in fresh
                  and record.id not in self.dropped and record.id not in self._storing):
                # A derived record not derived here is dropped before any check reads a cited
                # header; a signed one is checked first, so that its author pays for a lie.
                if record.author == DERIVED_AUTHOR and not self.refused.admits(record):
                    self.stats.drops.add("underived")  # never stored: node/knowledge.py
                elif refusal(record, lookup, brief) is not None:
                    self._refuse(record)
                elif not self.refused.admits(record):
                    self.stats.drops.add("underived")
                else:
                    fresh[record.id] = record
        if not fresh:
            return 0
        self._storing.update(fresh)
        try:  # durable first
            await trio.to_thread.run_sync(self.store.add_many, list(fresh.values()))
            async with self._deriving:  # never while a derivation reads the DAG
                for record in fresh.values():
                    self.dag.add(record)
                    if isinstance(record, Verification):
                        self.ledger.note(record)
                    elif isinstance(record, Experiment):
                        if record.problem in self.loops:  # the model's data once it vouches
                            self.loops[record.problem].offer_data(record)
                        self._consider_claim(record)
        finally:
            self._storing.difference_update(fresh)
        self.stats.received += len(fresh)
        return len(fresh)

    def _refuse(self, record: Record) -> None:
        """A signed record that contradicts what we hold: its author signed it, so the author
        pays (the relay may not have known; a record that fails alone is dropped earlier, at
        decode, and the gossip layer penalises whoever forwarded it). A derived record has no
        author to charge (its fake is stored at most, never used: node/knowledge.py)."""
        self.stats.refused += 1
        self.stats.drops.add("inconsistent")
        if record.author == DERIVED_AUTHOR:
            return
        penalty = self.config.trust.mismatch_penalty
        self.ledger.standing[record.author] = self.ledger.standing_of(record.author) - penalty
        self.network.adjust_score(record.author, -self.config.trust.score_penalty)

    def _consider_claim(self, experiment: Experiment) -> None:
        """Queue a peer's claimed improvement for replay (docs/protocol.md section 9): always
        when adopting it would improve our best; otherwise when it is in our sample, or its
        author's standing has never been measured."""
        if experiment.author == self.me or experiment.outcome.status != "ok":
            return
        if experiment.id in self.ledger.my_replays:
            return
        loop = self.loops.get(experiment.problem)
        score = experiment.outcome.score
        if loop is None or score is None:
            return
        if strategy_refusal(experiment, loop.problem) is not None:
            return  # taken in before its problem was: never replayed (refused on the wire)
        best = loop.best
        incumbent = None if best is None else best.outcome.score
        if loop.metric.better(score, incumbent):
            self.claims.add(experiment, self._round)
            return
        parent = None if experiment.parent is None else self.dag.get(experiment.parent)
        if not isinstance(parent, Experiment) or parent.outcome.status != "ok":
            return  # not a claimed improvement over a parent we hold (a baseline, a crash)
        if not loop.metric.better(score, parent.outcome.score):
            return
        if self.ledger.sampled(experiment.id) or not self.ledger.measured(experiment.author):
            self.samples.add(experiment, self._round)

    def _rank(self, experiment: Experiment) -> float:
        score = experiment.outcome.score or 0.0
        loop = self.loops.get(experiment.problem)
        return score if loop is None or loop.metric.direction == "maximize" else -score

    # ----- gossip and sync -------------------------------------------------------------------

    def sync_scope(self) -> list[str] | None:
        """Problems whose history we pull (None: everything; we also want problem records)."""
        return None

    def _validate(self, topic: str, source: str, data: bytes) -> bool:
        """The gossip validator: cheap checks only (size, schema, signatures, the topic);
        never replays. What it decoded stays in `decoded` for intake (decoding is most of a
        relay's CPU)."""
        if self.ledger.ignored(source):
            return False
        records = self.decoded.envelope(data, self.stats.drops)
        if records is None:
            return False
        # Each on its topic (docs/protocol.md section 3, Topics); a Verification or Verdict whose
        # experiment or hypothesis we do not hold cannot be placed (None): it passes.
        if any(topic_of(record, self.dag) not in (None, topic) for record in records):
            self.stats.drops.add("topic")  # an experiment on the problems topic was accepted
            return False
        return True

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscriptions and anti-entropy, until cancelled. Ready once subscribed."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._subscribe(PROBLEMS_TOPIC)
            for problem_id in sorted(self.loops):
                await self._subscribe(problem_topic(problem_id))
            nursery.start_soon(self._sync_on_connect)
            task_status.started()

    async def _subscribe(self, topic: str) -> None:
        if topic in self._topics or self._nursery is None:
            return
        self._topics.add(topic)
        channel = await self.network.subscribe(
            topic, validator=lambda source, data: self._validate(topic, source, data)
        )
        self._nursery.start_soon(self._drain, channel)

    async def _drain(self, channel: trio.MemoryReceiveChannel[GossipMessage]) -> None:
        """Take in gossip; what arrived while the last batch was being stored goes into one
        batch, so a burst costs one store transaction (one worker-thread hop), not one each."""
        async with channel:
            async for message in channel:
                records = self._pushed(message)
                for _ in range(INTAKE_BATCH - 1):
                    try:
                        more = channel.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    records += self._pushed(more)
                if records:
                    await self.take(records)

    def _pushed(self, message: GossipMessage) -> list[Record]:
        """A gossip message's records this node takes in: a derived record it does not derive
        is dropped here (`underived`), and its publisher, past its allowance of those since our
        last curation, loses gossip score (docs/security.md)."""
        records = self.decoded.envelope(message.data, self.stats.drops) or []
        kept = [record for record in records if record.author != DERIVED_AUTHOR
                or record.id in self.dag or self.refused.admits(record)]
        if len(kept) < len(records):
            for _ in range(len(records) - len(kept)):
                self.stats.drops.add("underived")
            if self.refused.over_allowance(message.source, len(records) - len(kept)):
                self.network.adjust_score(message.source, -self.config.trust.score_penalty)
        return kept

    async def _sync_on_connect(self) -> None:
        async with self.network.peer_events() as events:
            async for peer in events:
                await self.sync.sync_with(peer)

    async def sync_with_peers(self) -> int:
        """One anti-entropy pass with every connected peer (run periodically)."""
        taken = 0
        for peer in sorted(self.network.connected_peers()):
            taken += await self.sync.sync_with(peer)
        return taken

    # ----- research -------------------------------------------------------------------------

    async def join_problems(self) -> None:
        """Start loops on wanted problems, up to `max_problems`, fewest workers first."""
        candidates = [
            p for p in self.known_problems() if self._wanted(p) and p.id not in self.loops
        ]
        candidates.sort(key=lambda p: (self._workers(p.id), p.id))
        joined: list[Problem] = []
        for problem in candidates[: max(0, self.config.max_problems - len(self.loops))]:
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

    async def _consider_history(self, problem_id: str) -> None:
        """`_consider_claim` for the claims a problem's history holds, picked by their headers
        and loaded a few at a time: loading all 20,000 of a joined problem held the event loop
        for 6 s, long enough for js-libp2p to drop us for a late ping (issue 10, item 4)."""
        loop = self.loops[problem_id]
        best = None if loop.best is None else loop.best.outcome.score
        adoptable: list[Header] = []
        others: list[Header] = []
        for header in self.dag.experiment_headers(problem_id):
            if header.author == self.me or header.score is None:
                continue
            if loop.metric.better(header.score, best):
                adoptable.append(header)
                continue
            parent = None if header.parent is None else self.dag.header(header.parent)
            if (parent is not None and parent.score is not None
                    and loop.metric.better(header.score, parent.score)
                    and (self.ledger.sampled(header.id)
                         or not self.ledger.measured(header.author))):
                others.append(header)
        adoptable.sort(key=lambda h: h.score or 0.0, reverse=loop.metric.direction == "maximize")
        picked = [h.id for h in adoptable[: self.claims.limit]]
        picked += [h.id for h in others[-self.samples.limit :]]  # the newest
        for start in range(0, len(picked), CONSIDERED_PER_CHECKPOINT):
            for record in self.dag.get_many(picked[start : start + CONSIDERED_PER_CHECKPOINT]):
                if isinstance(record, Experiment):
                    self._consider_claim(record)
            await trio.lowlevel.checkpoint()  # let pings and gossip in between

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

    def _tick(self) -> None:
        """One round passes: queued claims expire, negative standing and scores decay."""
        self._round += 1
        ttl = self.config.trust.claim_ttl_rounds
        self.stats.expired += self.claims.expire(self._round, ttl)
        self.stats.expired += self.samples.expire(self._round, ttl)
        self.ledger.decay()
        self.network.decay_scores(self.config.trust.decay_per_round)

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

    async def replay_claims(self) -> None:
        """Replay the best adoption candidates the budget allows (dropping those overtaken),
        then sampled claims with what the budget has left."""
        self._tick()
        while (claim := self._next_claim()) is not None and self.budget.spend():
            self.claims.discard(claim.id)
            await self.replay(claim)  # claims arrive meanwhile: look again afterwards
        while self.samples and not self._next_claim() and self.budget.spend():
            sample = self.samples.best_first()[0]
            self.samples.discard(sample.id)
            if sample.transcript is not None and sample.transcript not in self.dag:
                self.budget.tokens += 1.0  # not replayed: its transcript has not arrived
                continue
            if sample.id not in self.ledger.my_replays:
                self.stats.sampled += 1
                await self.replay(sample)

    def _next_claim(self) -> Experiment | None:
        """The best pending claim that would still improve on our best."""
        for claim in self.claims.best_first():
            loop = self.loops.get(claim.problem)
            best = None if loop is None else loop.best
            score = claim.outcome.score
            if claim.transcript is not None and claim.transcript not in self.dag:
                continue  # replayed once its transcript arrives (or expired meanwhile)
            if loop is not None and score is not None and (
                best is None or loop.metric.better(score, best.outcome.score)
            ):
                return claim
            self.claims.discard(claim.id)  # no longer an improvement for us: not worth a replay
        return None

    async def replay(self, claim: Experiment) -> Verification:
        """Replay a claim and share our Verification. A model-backed claim is replayed once
        its transcript is held (`_next_claim`, `replay_claims` wait for it)."""
        why = strategy_refusal(claim, self.loops[claim.problem].problem)
        evaluate = self._evaluate[claim.problem]
        spot = None
        if why is None and isinstance(evaluate, ModelVerifier):
            checked = await self._check_model_claim(evaluate, claim)
            replayed, matched, spot = checked.outcome, checked.match, checked.spot_check
        else:
            if why is None:
                ran = await trio.to_thread.run_sync(
                    evaluate, dict(claim.strategy), abandon_on_cancel=True
                )
                replayed = ran.outcome if isinstance(ran, Evaluated) else ran
            else:  # never staged: its files are not the problem's to write (issue 8, finding 1)
                replayed = Outcome(status="invalid", stderr_tail=why[:MAX_STDERR_TAIL])
            matched = outcomes_match(claim.outcome, replayed)
        verification = sign_record(
            Verification(
                experiment=claim.id, outcome=replayed, match=matched, author=self.me, created_ms=0,
                spot_check=spot,
            ),
            self.identity,
        )
        assert isinstance(verification, Verification)
        await trio.to_thread.run_sync(self.store.add, verification)
        self.ledger.note(verification)
        self._record_replay(claim, matched)
        self.stats.replays += 1
        if matched:
            self.stats.replay_matches += 1
            if self.loops[claim.problem].offer(claim):
                self.stats.adopted += 1
        else:
            self.stats.disputes += 1
        self._share(verification)
        return verification

    async def _check_model_claim(self, verifier: ModelVerifier, claim: Experiment) -> ModelCheck:
        """A model-backed claim: replayed with its transcript's responses, then spot-checked
        with our own model (docs/protocol.md, "Model-backed claims")."""
        if claim.transcript is None:
            return unverifiable("a model-backed claim without the transcript of its calls")
        transcript = self.dag.get(claim.transcript)
        if transcript is None:  # only a direct call gets here (the queues wait for it)
            return unverifiable(f"its transcript {claim.transcript} is not held")
        if not isinstance(transcript, Transcript):
            return unverifiable(f"its transcript {claim.transcript} is a {transcript.kind}")
        return await trio.to_thread.run_sync(
            verifier.verify, dict(claim.strategy), claim.outcome, transcript,
            f"{self.me}/{claim.id}", abandon_on_cancel=True,
        )

    def _record_replay(self, claim: Experiment, matched: bool) -> None:
        """Our replay moves the author's standing and, in proportion, its gossip score: down
        per mismatch, back up per match (the way back, with decay)."""
        if claim.id in self.ledger.my_replays:
            return
        self.ledger.record_replay(claim, matched)
        trust = self.config.trust
        self.network.adjust_score(
            claim.author, trust.score_reward if matched else -trust.score_penalty
        )

    async def flush(self) -> None:
        """Publish what this round produced: batched, one message per topic and batch."""
        self.stats.published += await self.outbox.flush()

    async def pose(self, problem: Problem) -> Problem:
        """Publish a problem (signed) so that peers can join it."""
        signed = sign_record(problem, self.identity)
        assert isinstance(signed, Problem)
        await trio.to_thread.run_sync(self.store.add, signed)
        self.dag.add(signed)
        self._share(signed)
        await self.flush()
        return signed



def _arrival_order(experiment: Experiment) -> float:
    """Every sampled claim ranks alike, so the queue keeps arrival order (`created_ms` is the
    author's to choose)."""
    return 0.0


def _within(budget: Budget, cap: Budget | None) -> bool:
    if cap is None:
        return True
    return (budget.fuel <= cap.fuel and budget.memory_mb <= cap.memory_mb
            and budget.wall_s <= cap.wall_s)
