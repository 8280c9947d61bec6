"""A spot check that cannot ask its model fails closed (docs/protocol.md section 9, "Model-backed
claims"): while the receiver's provider fails or its model budget is spent, a model-backed claim
gets no Verification (nothing signed, shared or counted) and is never adopted; it is tried again
after a backoff counted in rounds, verified or disputed once the model answers, and given up
with a reason after its last attempt. Real sandbox, real SQLite, the in-memory network; the
receiver's model is a recorded OpenAI-compatible endpoint (httpx.MockTransport) or the stand-in
behind a provider that raises."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recorded_llm import no_sleep, openai_completion, status

from node.cli.swarm import node_counters
from node.identity import Identity
from node.llm import (
    BudgetMeter,
    ChatProvider,
    EditingSession,
    LLMConfig,
    LLMUnavailable,
    ModelGateway,
    StandinProvider,
)
from node.llm.providers import JUDGE_SYSTEM, ModelReply, Stopped, _never, estimated_tokens
from node.llm.standin import standin_complete, standin_judge
from node.loop import LoopConfig
from node.model_evaluations import ModelEvaluations
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.problem import baseline_files, load_package
from node.sim import settle
from node.spot_retries import SpotRetries, Unchecked
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from node.trust import ModelCheck
from research_dag import Experiment, Outcome, Problem, Transcript, Verification
from sandbox import Evaluator, Runtime
from tests.model_claims import post_claim

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "skill_landing_copy"
JUDGE_PROMPT = re.compile(r"Question: (.*)\n\nText:\n<<<\n(.*)\n>>>\n\nAnswer yes or no\.",
                          re.DOTALL)


class StandinServer:
    """An OpenAI-compatible endpoint that answers as the stand-in model does, or, while `down`,
    with 503 (the client retries, then gives up: a provider failure)."""

    def __init__(self) -> None:
        self.down = False
        self.requests = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.down:
            return status(503, "overloaded_error", "the server is overloaded")
        body = json.loads(request.content)
        system, user = (message["content"] for message in body["messages"])
        if system == JUDGE_SYSTEM:
            asked = JUDGE_PROMPT.fullmatch(user)
            assert asked is not None
            text = "yes" if standin_judge(asked[1], asked[2]) else "no"
        else:
            text = standin_complete(system, user, body["max_tokens"])
        return openai_completion(
            text, tokens=(estimated_tokens(system, user), estimated_tokens(text)))


class FlakyStandin(StandinProvider):
    """The stand-in (deterministic: the exact check) whose calls fail while `down`, or at the
    0-based call numbers in `failing`."""

    def __init__(self, down: bool = False, failing: frozenset[int] = frozenset(),
                 deterministic: bool = True) -> None:
        self.down = down
        self.failing = failing
        self.deterministic = deterministic  # type: ignore[misc]
        self.calls = 0
        self.failures = 0

    def _gate(self) -> None:
        self.calls += 1
        if self.down or self.calls - 1 in self.failing:
            self.failures += 1
            raise LLMUnavailable("HTTP 503: the server is overloaded")

    def complete(self, system: str, user: str, max_tokens: int,
                 stopped: Stopped = _never) -> ModelReply:
        self._gate()
        return super().complete(system, user, max_tokens, stopped)

    def judge(self, question: str, output: str, stopped: Stopped = _never) -> ModelReply:
        self._gate()
        return super().judge(question, output, stopped)


def _openai(server: StandinServer) -> ModelGateway:
    config = LLMConfig("openai", "qwen2.5-coder:7b", "", "http://localhost:11434/v1",
                       max_retries=1)
    return ModelGateway(ChatProvider(config, httpx.MockTransport(server), no_sleep))


@asynccontextmanager
async def _nodes(runtime: Runtime, root: Path, receiver: ModelGateway) -> AsyncIterator[
        tuple[MemoryHub, list[SwarmNode], dict[int, ModelEvaluations]]]:
    """Node 0 checks claims with `receiver`; node 1 makes them with the stand-in."""
    hub = MemoryHub(seed=13)
    runs: dict[int, ModelEvaluations] = {}
    async with AsyncExitStack() as stack:
        nodes = []
        for index in range(2):
            identity = Identity.from_seed(bytes([index + 1]) * 32)
            network = await stack.enter_async_context(hub.open_node(identity.peer_id))
            store = stack.enter_context(RecordStore.open(root / f"{index}.sqlite"))

            def evaluator_for(problem: Problem, index: int = index) -> ModelEvaluations:
                evaluator = stack.enter_context(Evaluator(runtime, problem))
                gateway = receiver if index == 0 else ModelGateway(StandinProvider())
                runs[index] = ModelEvaluations(evaluator, problem, gateway)
                return runs[index]

            node = SwarmNode(identity, network, store, evaluator_for, OfflineMutator(),
                             NodeConfig(loop=LoopConfig(seed=index)))
            nursery = await stack.enter_async_context(trio.open_nursery())
            await nursery.start(node.serve)
            stack.callback(nursery.cancel_scope.cancel)
            nodes.append(node)
        await nodes[1].network.connect(nodes[0].network.listen_addrs()[0])
        await settle(hub, nodes)
        yield hub, nodes, runs


async def _joined(hub: MemoryHub, nodes: list[SwarmNode]) -> Problem:
    posed = await nodes[0].pose(load_package(EXAMPLE))
    await settle(hub, nodes)
    for node in nodes:
        await node.join_problems()
    await settle(hub, nodes)
    return posed


async def _post(hub: MemoryHub, nodes: list[SwarmNode], problem: Problem, skill: str,
                run: ModelEvaluations, edits: dict[int, str] | None = None) -> Experiment:
    """Node 1's claim of `skill` (its responses at `edits` replaced), taken in by node 0."""
    claim = await post_claim(nodes[1], problem, skill, run, edits)
    await settle(hub, nodes)
    assert claim.transcript in nodes[0].dag
    return claim


async def _round(hub: MemoryHub, nodes: list[SwarmNode]) -> None:
    """One idle round of the receiver with a full replay budget, and the gossip after it."""
    nodes[0].budget.tokens = nodes[0].budget.burst
    await nodes[0].catch_up()
    await settle(hub, nodes)


def _verifications(node: SwarmNode, by: str) -> list[Verification]:
    return [v for v in node.dag.records("verification")
            if isinstance(v, Verification) and v.author == by]


def _untouched(nodes: list[SwarmNode], claim: Experiment) -> None:
    """Nothing came of node 0's checks of `claim`: no Verification signed, stored or shared,
    no standing, no gossip score, not adopted, still pending."""
    receiver, author = nodes
    assert _verifications(receiver, receiver.me) == []
    assert _verifications(author, receiver.me) == []  # nothing shared
    assert list(receiver.store.iter_records(kind="verification")) == []
    assert receiver.ledger.my_replays == {} and not receiver.ledger.measured(author.me)
    assert receiver.ledger.standing_of(author.me) == 0.0
    assert receiver.network.score(author.me) == 0.0  # type: ignore[attr-defined]
    assert receiver.stats.replays == receiver.stats.adopted == 0
    assert receiver.best(claim.problem) != claim
    assert receiver.ledger.verdict(claim)[0] == "pending"


async def test_an_honest_claim_waits_while_the_provider_fails_and_verifies_once_it_answers(
    runtime: Runtime, tmp_path: Path
) -> None:
    server = StandinServer()
    async with _nodes(runtime, tmp_path, _openai(server)) as (hub, nodes, runs):
        problem = await _joined(hub, nodes)
        skill = baseline_files(problem)["SKILL.md"] + "\nEnd with a call to action.\n"
        honest = await _post(hub, nodes, problem, skill, runs[1])
        receiver = nodes[0]
        server.down = True  # it answered for our own baseline; now it fails
        await _round(hub, nodes)  # the replay matches; the spot check's model gives 503s
        assert receiver.stats.spot_unchecked == 1 and server.requests > 0
        assert receiver.stats.spot_last_failure.startswith("provider: ")
        assert honest.id in receiver.claims  # waiting for another attempt
        _untouched(nodes, honest)
        asked = server.requests
        await _round(hub, nodes)  # within its backoff: not tried again
        assert server.requests == asked and receiver.stats.spot_unchecked == 1
        server.down = False
        for _ in range(3):
            await _round(hub, nodes)
        (verification,) = _verifications(receiver, receiver.me)
        assert verification.experiment == honest.id and verification.match
        assert verification.spot_check is not None and verification.spot_check.sampled == 8
        assert verification.spot_check.provider == "openai"
        assert _verifications(nodes[1], receiver.me) == [verification]  # shared
        assert receiver.ledger.verdict(honest)[0] == "verified"
        assert receiver.best(problem.id) == honest and receiver.stats.adopted == 1
        assert receiver.stats.spot_unchecked == 1 and receiver.stats.spot_given_up == 0
        assert receiver.spot_retries.tries(honest.id) == 0  # settled


async def test_an_edited_claim_is_never_adopted_while_the_model_fails_and_disputed_after(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The hole this closes: with the recorded deterministic model down, the comparison found
    no differing answer and the lie verified on its replay alone (and was adopted)."""
    provider = FlakyStandin()
    async with _nodes(runtime, tmp_path, ModelGateway(provider)) as (hub, nodes, runs):
        problem = await _joined(hub, nodes)
        provider.down, provider.failures = True, 0
        product = json.loads(problem.files["data/public/products.json"])[0]
        perfect = f"{product['name']}, ${product['price']}: made for you. Order yours today."
        skill = baseline_files(problem)["SKILL.md"] + "\nMention the price.\n"
        lie = await _post(hub, nodes, problem, skill, runs[1], {0: perfect})
        for _ in range(2):
            await _round(hub, nodes)
            _untouched(nodes, lie)
        assert provider.failures == 1 and nodes[0].stats.spot_unchecked == 1
        provider.down = False
        for _ in range(2):
            await _round(hub, nodes)
        (verification,) = _verifications(nodes[0], nodes[0].me)
        assert not verification.match and verification.spot_check is not None
        assert verification.spot_check.recorded_better == 1
        assert nodes[0].ledger.verdict(lie)[0] == "disputed"
        assert nodes[0].best(problem.id) != lie


async def test_a_claim_whose_check_never_runs_is_given_up_with_the_reason(
    runtime: Runtime, tmp_path: Path
) -> None:
    gateway = ModelGateway(StandinProvider(), BudgetMeter())
    async with _nodes(runtime, tmp_path, gateway) as (hub, nodes, runs):
        problem = await _joined(hub, nodes)
        assert gateway.budget is not None
        gateway.budget.max_tokens = 0  # our model budget is spent
        skill = baseline_files(problem)["SKILL.md"] + "\nEnd with a call to action.\n"
        claim = await _post(hub, nodes, problem, skill, runs[1])
        receiver = nodes[0]
        tried: list[int] = []
        for round_ in range(20):
            before = receiver.stats.spot_unchecked
            await _round(hub, nodes)
            if receiver.stats.spot_unchecked > before:
                tried.append(round_)
        assert tried == [0, 2, 6, 14]  # after backoffs of 2, 4 and 8 rounds; then given up
        assert receiver.stats.spot_given_up == 1
        assert receiver.spot_retries.given_up[claim.id].startswith("budget: call 1: ")
        assert "token budget spent" in receiver.stats.spot_last_failure
        assert claim.id not in receiver.claims and claim.id not in receiver.samples
        receiver._consider_claim(claim)  # heard again: not queued again
        assert claim.id not in receiver.claims and claim.id not in receiver.samples
        _untouched(nodes, claim)
        counters = node_counters(receiver)  # what `swarm status` shows
        assert (counters["spot_unchecked"], counters["spot_given_up"]) == (4, 1)
        assert counters["spot_last_failure"].startswith("budget: ")
    data = tmp_path / "data"
    data.mkdir()
    (data / "node-status.json").write_text(json.dumps(counters))
    shown = subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", "status"], text=True,
        capture_output=True, timeout=300, env={**os.environ, "SWARM_DATA_DIR": str(data),
                                               "COLUMNS": "300"})
    assert shown.returncode == 0, shown.stderr
    assert ("spot     4 checks could not run, 1 claims given up (last: budget: call 1: token "
            "budget spent") in shown.stdout


def test_backoff_counts_rounds_and_gives_up_after_the_last_attempt() -> None:
    retries = SpotRetries(attempts=3, backoff_rounds=5)
    why = Unchecked("provider", "LLMUnavailable: HTTP 503")
    assert retries.due("a", 0)
    assert not retries.failed("a", 10, why)
    assert [retries.due("a", now) for now in (14, 15)] == [False, True]
    assert not retries.failed("a", 15, why)
    assert [retries.due("a", now) for now in (24, 25)] == [False, True]
    assert retries.failed("a", 25, why) and not retries.due("a", 10**6)
    assert retries.given_up == {"a": "provider: LLMUnavailable: HTTP 503"}
    assert retries.tries("a") == 3 and retries.tries("b") == 0


@pytest.fixture(scope="module")
def claims(runtime: Runtime) -> Iterator[tuple[Problem, Evaluator, dict[str, tuple[
        dict[str, str], Outcome, Transcript]]]]:
    """An honest claim and one with two edited responses, made with the stand-in."""
    problem = load_package(EXAMPLE)
    product = json.loads(problem.files["data/public/products.json"])[0]
    perfect = f"{product['name']}, ${product['price']}: made for you. Order yours today."
    with Evaluator(runtime, problem) as evaluator:
        run = ModelEvaluations(evaluator, problem, ModelGateway(StandinProvider()))
        files = {"SKILL.md": baseline_files(problem)["SKILL.md"] + "\nMention the price.\n"}
        done = run(files)
        door = EditingSession(run.gateway, problem, {0: perfect, 2: perfect})
        edited = evaluator.evaluate(files, door)
        yield problem, evaluator, {"honest": (files, done.outcome, done.transcript),
                                   "edited": (files, edited, door.transcript())}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(["honest", "edited"]), deterministic=st.booleans(),
       failing=st.frozensets(st.integers(0, 40), max_size=3), down=st.booleans(),
       seed=st.text(max_size=8))
def test_no_verdict_comes_from_a_spot_check_that_did_not_run(
    claims: tuple[Problem, Evaluator, dict[str, tuple[dict[str, str], Outcome, Transcript]]],
    which: str, deterministic: bool, failing: frozenset[int], down: bool, seed: str,
) -> None:
    """Whatever calls of the verifier's model fail (and whether it checks every call, as the
    recorded deterministic model, or a sample, as any other): a check during which the model
    failed once is Unchecked (the node then signs nothing: the tests above); one during which
    it never failed is a verdict, the same as with a model that never fails."""
    problem, evaluator, made = claims
    files, claimed, transcript = made[which]
    provider = FlakyStandin(down, failing, deterministic)
    checked = ModelEvaluations(evaluator, problem, ModelGateway(provider)).verify(
        files, claimed, transcript, seed)
    if provider.failures:
        assert isinstance(checked, Unchecked) and checked.reason == "provider"
        assert "LLMUnavailable" in checked.message
    else:
        assert isinstance(checked, ModelCheck)
        healthy = ModelEvaluations(evaluator, problem, ModelGateway(
            FlakyStandin(deterministic=deterministic))).verify(files, claimed, transcript, seed)
        assert checked == healthy
