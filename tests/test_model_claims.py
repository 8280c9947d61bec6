"""Model-backed claims between swarm nodes (in-memory network, the stand-in model): transcripts
travel with their experiments, an honest claim is verified, one whose transcript was edited to
pass more checks is disputed by the spot check, and records that lie about their transcript
are refused at intake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from node.identity import Identity
from node.intake import refusal
from node.llm import ModelGateway, StandinProvider
from node.loop import LoopConfig
from node.model_evaluations import ModelEvaluations
from node.mutators import OfflineMutator
from node.net import topic_of
from node.net.memory import MemoryHub
from node.net.wire import decode_batch, encode_batch
from node.problem import baseline_files, load_package
from node.sim import settle
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Experiment, Header, Outcome, Problem, Transcript, Verification
from sandbox import Evaluator, Runtime
from tests.model_claims import post_claim

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "skill_landing_copy"


@asynccontextmanager
async def _nodes(runtime: Runtime, root: Path, count: int) -> AsyncIterator[
        tuple[MemoryHub, list[SwarmNode], dict[int, ModelEvaluations]]]:
    hub = MemoryHub(seed=13)
    runs: dict[int, ModelEvaluations] = {}
    async with AsyncExitStack() as stack:
        nodes = []
        for index in range(count):
            identity = Identity.from_seed(bytes([index + 1]) * 32)
            network = await stack.enter_async_context(hub.open_node(identity.peer_id))
            store = stack.enter_context(RecordStore.open(root / f"{index}.sqlite"))

            def evaluator_for(problem: Problem, index: int = index) -> ModelEvaluations:
                evaluator = stack.enter_context(Evaluator(runtime, problem))
                runs[index] = ModelEvaluations(evaluator, problem, ModelGateway(StandinProvider()))
                return runs[index]

            node = SwarmNode(identity, network, store, evaluator_for, OfflineMutator(),
                             NodeConfig(loop=LoopConfig(seed=index)))
            nursery = await stack.enter_async_context(trio.open_nursery())
            await nursery.start(node.serve)
            stack.callback(nursery.cancel_scope.cancel)
            nodes.append(node)
        for node in nodes[1:]:
            await node.network.connect(nodes[0].network.listen_addrs()[0])
        await settle(hub, nodes)
        yield hub, nodes, runs


async def _post(node: SwarmNode, problem: Problem, skill: str, run: ModelEvaluations,
                edits: dict[int, str] | None = None) -> Experiment:
    return await post_claim(node, problem, skill, run, edits)


async def test_an_honest_claim_is_verified_and_an_edited_one_disputed(
    runtime: Runtime, tmp_path: Path
) -> None:
    problem = load_package(EXAMPLE)
    async with _nodes(runtime, tmp_path, 3) as (hub, nodes, runs):
        posed = await nodes[0].pose(problem)
        await settle(hub, nodes)
        for node in nodes:
            await node.join_problems()
        await settle(hub, nodes)
        skill = baseline_files(posed)["SKILL.md"] + "\nEnd with a call to action.\n"
        honest = await _post(nodes[1], posed, skill, runs[1])
        product = json.loads(posed.files["data/public/products.json"])[0]
        perfect = f"{product['name']}, ${product['price']}: made for you. Order yours today."
        lie = await _post(nodes[2], posed, skill + "Mention the price.\n", runs[2],
                          {0: perfect})
        assert (lie.outcome.score or 0) > (honest.outcome.score or 0)
        await settle(hub, nodes)
        assert honest.transcript in nodes[0].dag and lie.transcript in nodes[0].dag
        for _ in range(2):
            for node in nodes:
                node.budget.tokens = node.budget.burst
                await node.catch_up()
            await settle(hub, nodes)
        mine = [v for v in nodes[0].dag.records("verification")
                if isinstance(v, Verification) and v.author == nodes[0].me]
        by_claim = {v.experiment: v for v in mine}
        assert by_claim[honest.id].match
        disputed = by_claim[lie.id]
        assert not disputed.match and disputed.spot_check is not None
        assert disputed.spot_check.recorded_better == 1
        assert (disputed.outcome.score or 0) < (lie.outcome.score or 0)
        assert nodes[0].ledger.verdict(honest)[0] == "verified"
        assert nodes[0].ledger.verdict(lie)[0] == "disputed"
        assert nodes[0].best(posed.id) == honest  # adopted the honest one, not the lie


def test_a_transcript_travels_on_its_problems_topic_and_an_experiment_cannot_lie_about_it(
) -> None:
    from node.identity import sign_record
    from research_dag import ResearchDag, TranscriptCall

    identity = Identity.from_seed(b"\x07" * 32)
    transcript = sign_record(Transcript(problem="ab" * 32, calls=[TranscriptCall(
        kind="judge", request="cd" * 32, response="yes", model="standin-1",
        provider="standin")]), identity)
    assert isinstance(transcript, Transcript)
    (envelope,) = encode_batch([transcript])
    assert decode_batch(envelope) == [transcript]
    assert topic_of(transcript, ResearchDag()) == topic_of(
        Experiment(problem="ab" * 32, strategy={"a.py": ""}, outcome=Outcome(status="ok")),
        ResearchDag())
    other = Experiment(problem="ef" * 32, strategy={"a.py": ""}, outcome=Outcome(status="ok"),
                       transcript=transcript.id)
    held = {transcript.id: Header(transcript.id, "transcript", 0, transcript.author,
                                  transcript.problem)}
    why = refusal(other, lambda _: None, held.get)
    assert why is not None and "not a transcript of the same problem" in why
