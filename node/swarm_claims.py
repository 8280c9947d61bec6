"""How a swarm node decides which peers' claims to replay, replays them in its own sandbox and
lets the result move the author's standing (docs/protocol.md section 9)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from node.identity import Identity, sign_record
from node.intake import strategy_refusal
from node.loop import ResearchLoop
from node.model_evaluations import PATIENT_WALL_S, unverifiable
from node.net import Network
from node.spot_retries import SpotRetries, Unchecked
from node.store import RecordStore
from node.swarm_config import Evaluate, NodeConfig, NodeStats
from node.trust import (
    Ledger,
    ModelCheck,
    ModelVerifier,
    PendingClaims,
    ReplayBudget,
    outcomes_match,
    spot_seed,
)
from research_dag import (
    MAX_STDERR_TAIL,
    Experiment,
    Header,
    Outcome,
    Record,
    ResearchDag,
    Transcript,
    Verification,
)
from sandbox import Evaluated, Evaluator

CONSIDERED_PER_CHECKPOINT = 256  # history claims loaded between event-loop checkpoints


class ClaimReplays:
    """The replaying half of `SwarmNode` (node/swarm.py), which sets every attribute below."""

    identity: Identity
    me: str
    network: Network
    store: RecordStore
    config: NodeConfig
    dag: ResearchDag
    ledger: Ledger
    budget: ReplayBudget
    stats: NodeStats
    loops: dict[str, ResearchLoop]
    claims: PendingClaims
    samples: PendingClaims
    spot_retries: SpotRetries
    _evaluate: dict[str, Evaluate]
    _round: int

    if TYPE_CHECKING:  # node/swarm.py

        def _share(self, record: Record) -> None: ...

    def _consider_claim(self, experiment: Experiment) -> None:
        """Queue a peer's claimed improvement for replay (docs/protocol.md section 9): always
        when adopting it would improve our best; otherwise when it is in our sample, or its
        author's standing has never been measured."""
        if experiment.author == self.me or experiment.outcome.status != "ok":
            return
        if experiment.id in self.ledger.my_replays or experiment.id in self.spot_retries.given_up:
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
        # The parent's header, not the record: a read of a whole (1 MB) parent for each child
        # held the event loop (260 children: 1.85 s).
        parent = None if experiment.parent is None else self.dag.header(experiment.parent)
        if parent is None or parent.kind != "experiment" or parent.score is None:
            return  # not a claimed improvement over a parent we hold (a baseline, a crash)
        if not loop.metric.better(score, parent.score):
            return
        if self.ledger.sampled(experiment.id) or not self.ledger.measured(experiment.author):
            self.samples.add(experiment, self._round)

    def _rank(self, experiment: Experiment) -> float:
        score = experiment.outcome.score or 0.0
        loop = self.loops.get(experiment.problem)
        return score if loop is None or loop.metric.direction == "maximize" else -score

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
            # Read in a worker thread (the store is locked; the DAG's cache is not touched):
            # 256 claims of 1 MB each held the event loop 1.7 s.
            some = picked[start : start + CONSIDERED_PER_CHECKPOINT]
            for record in await trio.to_thread.run_sync(self.store.get_many, some):
                if isinstance(record, Experiment):
                    self._consider_claim(record)

    def _tick(self) -> None:
        """One round passes: queued claims expire, negative standing and scores decay."""
        self._round += 1
        ttl = self.config.trust.claim_ttl_rounds
        self.stats.expired += self.claims.expire(self._round, ttl)
        self.stats.expired += self.samples.expire(self._round, ttl)
        self.ledger.decay()
        self.network.decay_scores(self.config.trust.decay_per_round)

    async def replay_claims(self) -> None:
        """Replay the best adoption candidates the budget allows (dropping those overtaken),
        then sampled claims with what the budget has left."""
        self._tick()
        while (claim := self._next_claim()) is not None and self.budget.spend():
            self.claims.discard(claim.id)
            await self.replay(claim)  # claims arrive meanwhile: look again afterwards
        while (not self._next_claim() and (sample := self._next_sample()) is not None
               and self.budget.spend()):
            self.samples.discard(sample.id)
            if sample.transcript is not None and sample.transcript not in self.dag:
                self.budget.tokens += 1.0  # not replayed: its transcript has not arrived
                continue
            if sample.id not in self.ledger.my_replays:
                self.stats.sampled += 1
                await self.replay(sample)

    def _next_sample(self) -> Experiment | None:
        """The oldest sampled claim due for replay (not waiting out a spot check's backoff)."""
        for sample in self.samples.best_first():
            if self.spot_retries.due(sample.id, self._round):
                return sample
        return None

    def _next_claim(self) -> Experiment | None:
        """The best pending claim that would still improve on our best (and is due: not
        waiting out the backoff of a spot check that could not run)."""
        for claim in self.claims.best_first():
            if not self.spot_retries.due(claim.id, self._round):
                continue
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

    async def replay(self, claim: Experiment) -> Verification | None:
        """Replay a claim and share our Verification. A model-backed claim is replayed once
        its transcript is held (`_next_claim`, `replay_claims` wait for it); when its spot
        check could not run there is no Verification (None): nothing is signed, shared or
        counted, and the claim waits for another attempt (`_retry_later`)."""
        why = strategy_refusal(claim, self.loops[claim.problem].problem)
        evaluate = self._evaluate[claim.problem]
        spot = None
        if why is None and isinstance(evaluate, ModelVerifier):
            checked = await self._check_model_claim(evaluate, claim)
            if isinstance(checked, Unchecked):
                self._retry_later(claim, checked)
                return None
            self.spot_retries.settled(claim.id)
            replayed, matched, spot = checked.outcome, checked.match, checked.spot_check
        else:
            if why is None:
                ran = await trio.to_thread.run_sync(
                    evaluate, dict(claim.strategy), abandon_on_cancel=True
                )
                replayed = ran.outcome if isinstance(ran, Evaluated) else ran
                if replayed.status == "timeout":  # once more, with time for all its fuel
                    replayed = await trio.to_thread.run_sync(
                        _patiently, evaluate, dict(claim.strategy), replayed,
                        abandon_on_cancel=True)
                if replayed.status == "timeout":
                    # Our wall clock fired even so, or our host failed: this machine, not the
                    # claim. Load never disputes a claim (docs/protocol.md, "Replays that say
                    # nothing"): no Verification, and the claim waits for another attempt.
                    self._retry_later(claim, Unchecked("timeout", _why_unchecked(replayed)))
                    return None
                self.spot_retries.settled(claim.id)
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

    def _retry_later(self, claim: Experiment, why: Unchecked) -> None:
        """A spot check that could not run checks nothing (docs/protocol.md, "Model-backed
        claims"): the claim goes back to its queue, due after a backoff counted in rounds,
        until its last attempt; then it is given up (counted, with the reason, in `stats`)."""
        self.stats.spot_unchecked += 1
        self.stats.spot_last_failure = why.describe()[:300]
        if self.spot_retries.failed(claim.id, self._round, why):
            self.stats.spot_given_up += 1
            return
        self._consider_claim(claim)  # back in the queue it came from, if it still belongs

    async def _check_model_claim(
        self, verifier: ModelVerifier, claim: Experiment
    ) -> ModelCheck | Unchecked:
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
            spot_seed(self.me, claim.id, self.identity.sign), abandon_on_cancel=True,
        )

    def _record_replay(self, claim: Experiment | Header, matched: bool) -> None:
        """Our replay moves the author's standing and, in proportion, its gossip score: down
        per mismatch, back up per match (the way back, with decay)."""
        if claim.id in self.ledger.my_replays:
            return
        self.ledger.record_replay(claim, matched)
        trust = self.config.trust
        self.network.adjust_score(
            claim.author, trust.score_reward if matched else -trust.score_penalty
        )


def _patiently(evaluate: Evaluate, strategy: dict[str, str], timed_out: Outcome) -> Outcome:
    """A replay that ran out of wall time, run once more with PATIENT_WALL_S of it (the same
    inputs and fuel): it then ends by its fuel (`out_of_fuel`, the same on every machine: a
    claim of `ok` for a strategy that spins is disputed, as before this rule) or finishes and
    is compared, unless this machine is too slow even for that. Only with a sandbox
    evaluator, whose problem it copies but for the wall time; `timed_out` otherwise."""
    evaluator = getattr(evaluate, "__self__", None)
    if not isinstance(evaluator, Evaluator) or evaluator.problem.budget.wall_s >= PATIENT_WALL_S:
        return timed_out
    with evaluator.with_wall_time(PATIENT_WALL_S) as longer:
        return longer.evaluate(strategy)


def _why_unchecked(replayed: Outcome) -> str:
    """What ended a replay that says nothing of its claim: one of two fixed texts (the
    replay's stderr is the strategy's to write, and this reaches `swarm status`)."""
    lines = replayed.stderr_tail.strip().splitlines()
    if lines and lines[-1].startswith("[sandbox] host fault"):
        return "the host failed during the replay"
    return "the replay ran out of this machine's wall time"


def _arrival_order(experiment: Experiment) -> float:
    """Every sampled claim ranks alike, so the queue keeps arrival order (`created_ms` is the
    author's to choose)."""
    return 0.0
