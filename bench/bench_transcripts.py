"""Transcripts and spot checks (issue 13), with the stand-in model, offline.

    .venv/bin/python bench/bench_transcripts.py [--quick] [--trials N]

- swarm: 4 nodes on the in-memory network join examples/skill_landing_copy. One posts an
  honest improvement; a liar posts a claim whose transcript it edited (k responses replaced by
  copies that pass every check, the edited responses scored honestly, so that the replay
  matches bit for bit). The others replay and spot-check both: the honest claim should be
  verified, the liar's disputed.
- detection: a liar edits k of the n = 20 responses of one evaluation (10 copies, 10 verdicts);
  each call is spot-checked alone once (its fresh response in an evaluation of its own), then a
  verifier's sample of s calls, drawn as `ModelEvaluations.verify` draws it (seeded by a
  verifier id and the claim id), detects the lie when it meets an edited call that changed a
  verdict. Empirical rate over `--trials` verifier ids against 1 - C(n-k, s) / C(n, s).
- cost: a verification's wall time against one evaluation's, same process.

With the stand-in (deterministic, the recorded model) a verifier asks it every recorded request
again, without evaluating, and evaluates only the calls whose answer differs: every edit that
changed a verdict is found. The sampled table is what a verifier gets when it can only afford
s of n fresh calls, or when its model's answers vary (then the sign test decides, last table).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.identity import Identity  # noqa: E402
from node.llm import EditingSession, ModelGateway, StandinProvider  # noqa: E402
from node.loop import LoopConfig  # noqa: E402
from node.model_evaluations import ModelEvaluations  # noqa: E402
from node.mutators import OfflineMutator  # noqa: E402
from node.net.memory import MemoryHub  # noqa: E402
from node.problem import baseline_files, load_package  # noqa: E402
from node.sim import settle  # noqa: E402
from node.store import RecordStore  # noqa: E402
from node.swarm import NodeConfig, SwarmNode  # noqa: E402
from node.trust import detection_odds  # noqa: E402
from research_dag import Experiment, Problem, Verification  # noqa: E402
from sandbox import Evaluator, Runtime, load_runtime  # noqa: E402

EXAMPLE = ROOT / "examples" / "skill_landing_copy"
PERFECT = "{name}, {price}: made for you. Order yours today."
SPOT_SAMPLES = 8


def _perfect(problem: Problem, index: int) -> str:
    import json

    products = json.loads(problem.files["data/public/products.json"])
    product = products[index]
    return PERFECT.format(name=product["name"], price=f"${product['price']}")


async def _claim(node: SwarmNode, problem: Problem, files: dict[str, str],
                 run: ModelEvaluations, edits: dict[int, str] | None = None) -> Experiment:
    """Evaluate `files` at `node` (with a liar's edits, if any) and post the claim."""
    if edits:
        door = EditingSession(run.gateway, problem, edits)  # type: ignore[arg-type]
        outcome = await trio.to_thread.run_sync(run.evaluator.evaluate, files, door)
        transcript = door.transcript()
    else:
        done = await trio.to_thread.run_sync(run, files)
        outcome, transcript = done.outcome, done.transcript
    sealed_transcript = node._seal(transcript)
    parent = node.loops[problem.id].best
    assert parent is not None
    experiment = node._seal(Experiment(
        problem=problem.id, parent=parent.id, strategy=files, outcome=outcome,
        mutation_kind="insert", description="edited" if edits else "honest",
        transcript=sealed_transcript.id, created_ms=1))
    for record in (sealed_transcript, experiment):
        node.store.add(record)
        node._share(record)
    await node.flush()
    return experiment


async def _swarm(runtime: Runtime, problem: Problem, edited: int) -> dict[str, Any]:
    hub = MemoryHub(seed=13)
    runs: dict[int, ModelEvaluations] = {}
    async with AsyncExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        nodes: list[SwarmNode] = []
        for index in range(4):
            identity = Identity.from_seed(bytes([index + 1]) * 32)
            network = await stack.enter_async_context(hub.open_node(identity.peer_id))
            store = stack.enter_context(RecordStore.open(root / f"{index}.sqlite"))

            def evaluator_for(posed: Problem, index: int = index) -> ModelEvaluations:
                evaluator = stack.enter_context(Evaluator(runtime, posed))
                runs[index] = ModelEvaluations(evaluator, posed, ModelGateway(StandinProvider()),
                                               spot_samples=SPOT_SAMPLES)
                return runs[index]

            node = SwarmNode(identity, network, store, evaluator_for, OfflineMutator(),
                             NodeConfig(loop=LoopConfig(seed=index)))
            nursery = await stack.enter_async_context(trio.open_nursery())
            await nursery.start(node.serve)
            stack.callback(nursery.cancel_scope.cancel)  # the node serves until we leave
            nodes.append(node)
        for node in nodes[1:]:
            await node.network.connect(nodes[0].network.listen_addrs()[0])
        await settle(hub, nodes)
        posed = await nodes[0].pose(problem)
        await settle(hub, nodes)
        for node in nodes:
            await node.join_problems()
        await settle(hub, nodes)
        base = baseline_files(posed)
        honest_files = {"SKILL.md": base["SKILL.md"] + "\nEnd with a call to action.\n"}
        # The liar claims more than the honest improvement (with edited responses), so that
        # every peer's best is beaten and every peer replays it.
        liar_files = {"SKILL.md": honest_files["SKILL.md"] + "Mention the price.\n"}
        honest = await _claim(nodes[1], posed, honest_files, runs[1])
        edits = {index: _perfect(posed, index) for index in range(edited)}
        lie = await _claim(nodes[3], posed, liar_files, runs[3], edits)
        await settle(hub, nodes)
        started = time.monotonic()
        for _ in range(3):
            for node in nodes:
                node.budget.tokens = node.budget.burst  # replays are what this bench measures
                await node.catch_up()
            await settle(hub, nodes)
        elapsed = time.monotonic() - started
        votes: dict[str, list[tuple[int, bool, Any]]] = {honest.id: [], lie.id: []}
        for index, node in enumerate(nodes):
            for record in node.dag.records("verification"):
                assert isinstance(record, Verification)
                if record.author == node.me and record.experiment in votes:
                    votes[record.experiment].append((index, record.match, record.spot_check))
        verdicts = {name: nodes[0].ledger.verdict(claim)[0] if nodes[0].me != claim.author
                    else "own" for name, claim in (("honest", honest), ("liar", lie))}
        return {"honest": honest, "lie": lie, "votes": votes, "verdicts": verdicts,
                "seconds": elapsed, "nodes": nodes}


def _detection(runtime: Runtime, problem: Problem, trials: int, quick: bool) -> list[str]:
    lines: list[str] = []
    with Evaluator(runtime, problem) as evaluator:
        gateway = ModelGateway(StandinProvider())
        run = ModelEvaluations(evaluator, problem, gateway, spot_samples=0)
        files = baseline_files(problem)
        started = time.monotonic()
        honest = run(files)
        one_eval = time.monotonic() - started
        n = len(honest.transcript.calls)
        complete = [i for i, c in enumerate(honest.transcript.calls) if c.kind == "complete"]
        judge = [i for i, c in enumerate(honest.transcript.calls) if c.kind == "judge"]
        started = time.monotonic()
        check = ModelEvaluations(evaluator, problem, gateway, spot_samples=SPOT_SAMPLES).verify(
            files, honest.outcome, honest.transcript, "cost/claim")
        verify_cost = time.monotonic() - started
        lines.append(f"one evaluation {one_eval:.2f} s; a verification with s={SPOT_SAMPLES}: "
                     f"{verify_cost:.2f} s ({verify_cost / one_eval:.1f}x one evaluation; "
                     f"honest: match={check.match}, spot={check.spot_check})")
        ks = (1, 2, 5) if quick else (1, 2, 3, 5, 10)
        sizes = (1, 2, 4, 8) if quick else (1, 2, 4, 8, 12, 20)
        lines.append(f"n = {n} calls ({len(complete)} copies, {len(judge)} verdicts); "
                     f"{trials} verifier ids per cell; detected / expected 1-C(n-k,s)/C(n,s)")
        lines.append("| k edited | " + " | ".join(f"s={s}" for s in sizes) + " |")
        lines.append("|---|" + "---|" * len(sizes))
        for k in ks:
            # The liar's edits: copies that pass every check, and "yes" for verdicts it needs.
            edited_copies = complete[: (k + 1) // 2]
            edited_verdicts = judge[len(judge) - k // 2:] if k // 2 else []
            edits = {i: _perfect(problem, complete.index(i)) for i in edited_copies}
            edits |= {i: "yes" for i in edited_verdicts}
            door = EditingSession(gateway, problem, edits)
            claimed = evaluator.evaluate(files, door)
            transcript = door.transcript()
            # Each call spot-checked alone, once: does its fresh response score worse?
            flagged = set()
            for index in range(len(transcript.calls)):
                mixed = evaluator.evaluate(files, gateway.spot_session(
                    transcript, run.limits, frozenset({index})))
                if mixed.score is not None and claimed.score is not None and \
                        mixed.score < claimed.score:
                    flagged.add(index)
            cells = []
            for s in sizes:
                hits = 0
                for trial in range(trials):
                    seed = f"verifier-{trial}/{transcript.id}"
                    rng = random.Random(hashlib.sha256(seed.encode()).digest())
                    sample = rng.sample(range(len(transcript.calls)), min(s, n))
                    hits += any(index in flagged for index in sample)
                expected = detection_odds(n, len(flagged), s)
                cells.append(f"{hits / trials:.2f} / {expected:.2f}")
            lines.append(f"| {k} ({len(flagged)} change a verdict) | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Against a model that varies (no exact comparison), a dispute needs the sign "
                 "test: "
                 "at least 5 recorded wins and no fresh win among the samples (p < 0.05). Best "
                 "case for the verifier (every honest sample a tie), P(dispute) = P(X >= 5), "
                 "X ~ Hypergeometric(n, k, s):")
    lines.append("| k edited | " + " | ".join(f"s={s}" for s in sizes) + " |")
    lines.append("|---|" + "---|" * len(sizes))
    for k in ks:
        cells = [f"{_at_least(5, n, k, s):.3f}" for s in sizes]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines


def _at_least(wins: int, n: int, k: int, s: int) -> float:
    from math import comb

    s = min(s, n)
    return sum(comb(k, x) * comb(n - k, s - x) for x in range(wins, min(k, s) + 1)) / comb(n, s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    runtime = load_runtime()
    problem = load_package(EXAMPLE)
    print("## swarm: 4 nodes, one honest claim, one with 3 edited responses; the stand-in "
          "re-asked in full "
          f"(a model that varies would get s={SPOT_SAMPLES} samples)")
    result = trio.run(_swarm, runtime, problem, 3)
    for name, claim in (("honest", result["honest"]), ("liar", result["lie"])):
        votes = result["votes"][claim.id]
        print(f"{name}: claimed {claim.outcome.score:.2f}; verifications "
              + ", ".join(f"node {i}: {'match' if m else 'MISMATCH'} {s}" for i, m, s in votes)
              + f"; node 0's verdict: {result['verdicts'][name]}")
    print(f"replay rounds took {result['seconds']:.1f} s")
    print()
    print("## detection: a liar edits k of n responses; a verifier spot-checks s of them")
    for line in _detection(runtime, problem, args.trials, args.quick):
        print(line)


if __name__ == "__main__":
    main()
