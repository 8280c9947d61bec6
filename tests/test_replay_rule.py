"""The replay rule of docs/protocol.md section 9 on the in-memory network: adoption candidates
always, a deterministic sample of the other claimed improvements (and every claim of an author
never measured), queued claims expire, and a peer whose standing fell finds its way back."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio
from hypothesis import given
from hypothesis import strategies as st

from node.identity import Identity, sign_record
from node.loop import LoopConfig
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from node.trust import Ledger, TrustConfig
from research_dag import Experiment, Outcome, Problem, Record, Verification
from sandbox import Evaluator, Runtime

ME = Identity.from_seed(b"\x21" * 32)
PEER = Identity.from_seed(b"\x22" * 32)


@asynccontextmanager
async def _node(
    hub: MemoryHub, root: Path, runtime: Runtime, trust: TrustConfig
) -> AsyncIterator[SwarmNode]:
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(hub.open_node(ME.peer_id))
        store = stack.enter_context(RecordStore.open(root / "me.sqlite", durable=False))

        def evaluator_for(problem: Problem):  # type: ignore[no-untyped-def]
            return stack.enter_context(Evaluator(runtime, problem, workdir=root)).evaluate

        node = SwarmNode(ME, network, store, evaluator_for, OfflineMutator(),
                         NodeConfig(loop=LoopConfig(seed=1), trust=trust))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


def _strategy(problem: Problem, scale: float) -> dict[str, str]:
    source = problem.files["strategy.py"].decode().replace("SCALE = 0.5", f"SCALE = {scale}")
    assert source != problem.files["strategy.py"].decode()
    return {"strategy.py": source}


async def _claims(
    runtime: Runtime, root: Path, problem: Problem, scales: list[float]
) -> list[Experiment]:
    """The peer's honest lineage: each strategy evaluated for real, each the next one's parent."""
    claims: list[Experiment] = []
    with Evaluator(runtime, problem, workdir=root) as evaluator:
        for scale in scales:
            strategy = _strategy(problem, scale)
            outcome = await trio.to_thread.run_sync(evaluator.evaluate, strategy)
            claim = sign_record(Experiment(
                problem=problem.id, parent=claims[-1].id if claims else None, strategy=strategy,
                mutation_kind="perturb", outcome=outcome, created_ms=len(claims) + 1,
            ), PEER)
            assert isinstance(claim, Experiment)
            claims.append(claim)
    return claims


def _beating(node: SwarmNode, problem: Problem) -> float:
    """A SCALE whose score (2 x SCALE) beats the node's best after its first round (the
    baseline's 1.0, or what its first change reached: that depends on the search's draw)."""
    best = node.best(problem.id)
    assert best is not None and best.outcome.score is not None
    assert best.outcome.score > 0.7  # the other claims (0.5, 0.6, 0.7) beat nothing of ours
    return max(0.6, best.outcome.score / 2 + 0.05)


async def test_an_unmeasured_authors_improvement_is_replayed_though_it_beats_no_best_of_ours(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    """Before: only claims beating our own best were replayed, so a peer working behind us
    stayed 'pending' forever and its standing (and votes) never counted."""
    trust = TrustConfig(sample_rate=0.0)  # no random sample: only the never-measured rule
    async with _node(MemoryHub(seed=1), tmp_path, runtime, trust) as node:
        posed = await node.pose(probe_problem)
        await node.research_round()  # our baseline: score 1.0
        base, better, best = await _claims(runtime, tmp_path, posed, [0.25, 0.4, 0.45])
        assert base.outcome.score == 0.5 and better.outcome.score == 0.8
        await node.take([base, better])
        await node.catch_up()
        assert node.ledger.my_replays == {better.id: True}  # beat its parent, not our best
        assert node.ledger.verdict(better)[0] == "verified"
        assert node.ledger.standing_of(PEER.peer_id) == trust.match_reward
        assert node.network.score(PEER.peer_id) == trust.score_reward  # type: ignore[attr-defined]
        assert node.stats.sampled == 1
        await node.take([best])  # now measured, and outside the sample (rate 0): not replayed
        for _ in range(3):
            await node.catch_up()
        assert best.id not in node.ledger.my_replays and node.ledger.verdict(best)[0] == "pending"
        assert len(node.samples) == 0


async def test_sampled_claims_wait_for_adoption_candidates_and_expire_unreplayed(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    trust = TrustConfig(sample_rate=1.0, replay_ratio=0.0, claim_ttl_rounds=3)
    async with _node(MemoryHub(seed=2), tmp_path, runtime, trust) as node:
        posed = await node.pose(probe_problem)
        await node.research_round()
        claims = await _claims(runtime, tmp_path, posed, [0.25, 0.3, 0.35, _beating(node, posed)])
        node.budget.tokens = 0.0  # no replay earned (ratio 0): the queues only wait
        await node.take(list[Record](claims))
        assert len(node.samples) == 2 and len(node.claims) == 1  # only the last beats our best
        for _ in range(trust.claim_ttl_rounds):
            await node.catch_up()
        assert len(node.samples) == 2 and len(node.claims) == 1
        await node.catch_up()
        assert len(node.samples) == 0 and len(node.claims) == 0
        assert node.stats.expired == 3 and node.ledger.my_replays == {}


async def test_the_adoption_candidate_is_replayed_before_any_sample(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    trust = TrustConfig(sample_rate=1.0, replay_ratio=0.0)
    async with _node(MemoryHub(seed=3), tmp_path, runtime, trust) as node:
        posed = await node.pose(probe_problem)
        await node.research_round()
        claims = await _claims(runtime, tmp_path, posed, [0.25, 0.3, 0.35, _beating(node, posed)])
        node.budget.tokens = 1.0  # one replay
        await node.take(list[Record](claims))
        await node.catch_up()
        assert node.ledger.my_replays == {claims[-1].id: True}
        assert node.stats.adopted == 1 and node.stats.sampled == 0


def test_the_sample_is_deterministic_and_near_its_rate() -> None:
    ledger = Ledger(me=ME.peer_id, config=TrustConfig(sample_rate=0.25))
    other = Ledger(me=PEER.peer_id, config=TrustConfig(sample_rate=0.25))
    claims = [
        Experiment(problem="11" * 32, strategy={"s.py": str(n)}, outcome=Outcome(status="ok"))
        for n in range(2000)
    ]
    mine = [ledger.sampled(claim.id) for claim in claims]
    assert mine == [ledger.sampled(claim.id) for claim in claims]
    assert 400 < sum(mine) < 600
    assert mine != [other.sampled(claim.id) for claim in claims]  # nodes sample different claims


def _failed_once(config: TrustConfig) -> tuple[Ledger, Experiment]:
    ledger = Ledger(me=ME.peer_id, config=config)
    lie = Experiment(problem="11" * 32, strategy={"s.py": ""}, outcome=Outcome(status="ok"),
                     author=PEER.peer_id)
    ledger.record_replay(lie, matched=False)
    return ledger, lie


def test_negative_standing_halves_every_half_life_and_positive_standing_stays() -> None:
    config = TrustConfig(standing_half_life_rounds=10.0)
    ledger, _ = _failed_once(config)
    ledger.standing["friend"] = 0.75
    for _ in range(10):
        ledger.decay()
    assert abs(ledger.standing_of(PEER.peer_id) + 0.5) < 1e-9
    assert ledger.standing_of("friend") == 0.75


@given(st.integers(3, 20), st.floats(5.0, 500.0))
def test_an_ignored_peer_is_heard_again_after_a_bounded_number_of_rounds(
    mismatches: int, half_life: float
) -> None:
    config = TrustConfig(standing_half_life_rounds=half_life)
    ledger = Ledger(me=ME.peer_id, config=config)
    ledger.standing[PEER.peer_id] = -config.mismatch_penalty * mismatches
    assert ledger.ignored(PEER.peer_id)
    rounds = 0
    while ledger.ignored(PEER.peer_id):
        ledger.decay()
        rounds += 1
    # back above the floor within log2(standing / floor) half-lives (+1 round of rounding)
    bound = half_life * (mismatches * config.mismatch_penalty / -config.standing_floor)
    assert rounds <= bound + 1


async def test_a_peer_penalised_once_earns_its_gossip_score_back(tmp_path: Path) -> None:
    """The gossip score follows standing: -50 per failed replay, +12.5 per reproduced claim,
    and negative scores decay, so one failed replay is not a life sentence."""
    config = TrustConfig()
    async with MemoryHub(seed=4).open_node(ME.peer_id) as network:
        network.adjust_score(PEER.peer_id, -config.score_penalty)
        for _ in range(int(config.standing_half_life_rounds)):
            network.decay_scores(config.decay_per_round)
        assert abs(network.score(PEER.peer_id) + config.score_penalty / 2) < 1e-6
        for _ in range(2):
            network.adjust_score(PEER.peer_id, config.score_reward)
        assert abs(network.score(PEER.peer_id)) < 1e-6


def test_the_score_reward_is_the_penalty_in_proportion() -> None:
    config = dataclasses.replace(TrustConfig(), match_reward=0.5)
    assert config.score_reward == 25.0


async def test_a_replay_cut_short_by_this_machine_disputes_nothing_and_is_tried_again(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    """A replay that ends `timeout` (our wall clock fired under load, or our host failed:
    sandbox/run_outcomes.py) says nothing of the claim. Before, it was a signed mismatch: the
    honest author lost standing and gossip score, and its claim was disputed for good."""
    trust = TrustConfig(sample_rate=0.0, replay_ratio=0.0)
    async with _node(MemoryHub(seed=5), tmp_path, runtime, trust) as node:
        posed = await node.pose(probe_problem)
        await node.research_round()
        claims = await _claims(runtime, tmp_path, posed, [0.25, _beating(node, posed)])
        claim = claims[-1]
        real = node._evaluate[posed.id]
        cut_short = Outcome(status="timeout", stderr_tail=(
            "[sandbox] host fault, not the strategy's: host_fault: OSError: disk full"))
        calls = []

        def loaded(strategy):  # type: ignore[no-untyped-def]
            calls.append(dict(strategy))
            return cut_short if len(calls) == 1 else real(strategy)

        node._evaluate[posed.id] = loaded
        await node.take(list[Record](claims))
        node.budget.tokens = 1.0
        await node.catch_up()
        assert calls == [claim.strategy]
        assert node.ledger.my_replays == {} and node.ledger.standing_of(PEER.peer_id) == 0
        assert node.network.score(PEER.peer_id) == 0  # type: ignore[attr-defined]
        assert not list(node.store.iter_records(kind="verification"))
        assert node.stats.disputes == 0 and node.stats.replays == 0
        assert node.stats.spot_unchecked == 1
        assert node.stats.spot_last_failure == "timeout: the host failed during the replay"
        for _ in range(4):  # its backoff (2 rounds), then a replay that runs
            node.budget.tokens = 1.0
            await node.catch_up()
        assert node.ledger.my_replays == {claim.id: True} and node.stats.adopted == 1
        assert node.ledger.standing_of(PEER.peer_id) == trust.match_reward


async def test_a_claim_of_ok_for_a_strategy_that_spins_is_still_disputed(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    """A replay that runs out of wall time is run once more with time for all its fuel
    (PATIENT_WALL_S): a strategy that spins then ends `out_of_fuel` on every machine, and its
    author's claim of `ok` is a mismatch, charged as before. (Without it a liar whose
    strategies spin past the wall clock would never lose standing, and each of its claims
    would cost a receiver four replays.)"""
    trust = TrustConfig(sample_rate=0.0, replay_ratio=0.0)
    budget = probe_problem.budget.model_copy(update={"fuel": 5 * 10**9, "wall_s": 0.1})
    tight = probe_problem.model_copy(update={"budget": budget})
    async with _node(MemoryHub(seed=6), tmp_path, runtime, trust) as node:
        posed = await node.pose(tight)
        await node.join_problems()  # its baseline (under load it may time out: no matter)
        source = posed.files["strategy.py"].decode()
        spin = {"strategy.py": source + "\n\ndef solve(*args, **kwargs):\n    while True:\n"
                                        "        pass\n"}
        lie = sign_record(Experiment(
            problem=posed.id, strategy=spin, mutation_kind="perturb", created_ms=1,
            outcome=Outcome(status="ok", score=1e9, strategy_fuel=1000)), PEER)
        assert isinstance(lie, Experiment)
        await node.take([lie])
        node.budget.tokens = 1.0
        await node.catch_up()
        assert node.ledger.my_replays == {lie.id: False}
        assert node.ledger.standing_of(PEER.peer_id) == -trust.mismatch_penalty
        [check] = [v for v in node.store.iter_records(kind="verification")
                   if isinstance(v, Verification)]
        assert (check.outcome.status, check.match) == ("out_of_fuel", False)
