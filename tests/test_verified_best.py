"""Issue 8 finding 12: a forged, disputed claim never shows as a best, and each peer's standing
is visible. A lying peer in a small in-memory swarm, then the real `swarm status --json` and
`swarm leaderboard --json` on an honest node's data directory."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from node.identity import Identity
from node.leaderboard import ledger_from
from node.loop import LoopConfig
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.sim import settle
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from node.trust import Ledger, TrustConfig
from research_dag import Experiment, Metric, Outcome, Problem, ResearchDag, Verification
from sandbox import Evaluator, Runtime


@asynccontextmanager
async def _node(hub: MemoryHub, directory: Path, runtime: Runtime, seed: int, liar: bool = False
                ) -> AsyncIterator[SwarmNode]:
    """A node whose records and identity live where `swarm status --data-dir` looks."""
    directory.mkdir()
    identity = Identity.from_seed(bytes([seed + 1]) * 32)  # fixed peer ids: a repeatable swarm
    (directory / "identity.key").write_bytes(identity.to_key_file_bytes())
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(hub.open_node(identity.peer_id))
        store = stack.enter_context(RecordStore.open(directory / "records.sqlite"))

        def evaluator_for(problem: Problem):  # type: ignore[no-untyped-def]
            return stack.enter_context(Evaluator(runtime, problem)).evaluate

        node = SwarmNode(identity, network, store, evaluator_for, OfflineMutator(),
                         NodeConfig(loop=LoopConfig(seed=seed), liar=liar))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


async def _swarm_json(*args: str) -> dict | list:  # type: ignore[type-arg]
    done = await trio.run_process(
        [sys.executable, "-c", "from node.cli import main; main()", *args, "--json"],
        capture_stdout=True, capture_stderr=True, env=dict(os.environ),
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def test_a_liars_disputed_claim_is_never_the_best_and_standing_shows_it(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=12)
    async with _node(hub, tmp_path / "a", runtime, 0) as a, \
            _node(hub, tmp_path / "liar", runtime, 1, liar=True) as liar, \
            _node(hub, tmp_path / "c", runtime, 2) as c:
        nodes = (a, liar, c)
        await liar.network.connect(a.network.listen_addrs()[0])
        await c.network.connect(a.network.listen_addrs()[0])
        await settle(hub, nodes)
        posed = await a.pose(probe_problem)
        await settle(hub, nodes)
        for _ in range(1):  # one round: the forged +1.0 stays ahead of the honest best
            for node in nodes:
                await node.research_round()
            await settle(hub, nodes)
        for _ in range(2):
            for node in nodes:
                await node.catch_up()
            await settle(hub, nodes)
        fakes = liar.fakes
        assert fakes and a.stats.disputes > 0
        # What the original bug showed: the best claim in the DAG is a forgery.
        claimed = a.dag.best(posed.id)
        assert claimed is not None and claimed.id in fakes
        loop_best = a.best(posed.id)
        assert loop_best is not None and loop_best.id not in fakes

    status = await _swarm_json("status", "--data-dir", str(tmp_path / "a"))
    assert isinstance(status, dict)
    [problem] = status["problems"]
    assert problem["best_experiment"] not in fakes
    assert problem["best"] == loop_best.outcome.score  # the honest best the loop holds
    assert problem["disputed"] > 0
    standing = status["standing"][liar.me]
    assert standing["disputed"] > 0 and standing["standing"] < 0
    assert status["standing"][c.me]["disputed"] == 0

    [board] = await _swarm_json("leaderboard", "--data-dir", str(tmp_path / "a"))
    assert board["best"] == problem["best"] and board["best_experiment"] not in fakes
    assert board["rows"][0]["verdict"] in ("own", "verified")
    assert all(row["verdict"] != "disputed" or row["id"] in fakes for row in board["rows"])


METRIC = Metric(name="x", direction="maximize")
PROBLEM = Problem(name="p", statement="s", metric=METRIC, mutable=["strategy.py"],
                  files={"strategy.py": b"x=1",
                  "evaluate.py": b"def evaluate(): pass", "data/private/a": b"1"})
PEERS = ["me", "p1", "p2", "p3", "p4"]


@settings(max_examples=60, deadline=None)
@given(
    claims=st.lists(st.tuples(st.sampled_from(PEERS), st.floats(0, 10)), min_size=1, max_size=6),
    votes=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(PEERS), st.booleans()),
                   max_size=12),
)
def test_every_best_shown_is_verified_by_the_one_definition(
    claims: list[tuple[str, float]], votes: list[tuple[int, str, bool]]
) -> None:
    experiments = [
        Experiment(problem=PROBLEM.id, strategy={"strategy.py": f"x={i}"}, author=author,
                   outcome=Outcome(status="ok", score=score), created_ms=i)
        for i, (author, score) in enumerate(claims)
    ]
    verifications = [
        Verification(experiment=experiments[index % len(experiments)].id, match=match,
                     outcome=Outcome(status="ok"), author=author, created_ms=n)
        for n, (index, author, match) in enumerate(votes)
    ]
    dag = ResearchDag([PROBLEM, *experiments, *verifications])
    ledger = ledger_from(dag, "me")
    best = dag.best(PROBLEM.id, ledger.verified)
    verdicts = {e.id: ledger.verdict(e)[0] for e in experiments}
    shown = {e.id for e in experiments if verdicts[e.id] in ("own", "verified")}
    assert shown == {e.id for e in experiments if ledger.verified(e)}
    # The loop's stricter test for a parent (our own evaluation or replay) implies verified.
    assert all(ledger.verified(e) for e in experiments if ledger.trusted(e))
    if best is not None:
        assert best.id in shown
        assert all((e.outcome.score or 0) <= (best.outcome.score or 0)
                   for e in experiments if e.id in shown)
    else:
        assert not shown
    for e in experiments:  # a claim our own replay refuted is never shown
        if e.author != "me" and ledger.my_replays.get(e.id) is False:
            assert verdicts[e.id] == "disputed"


def test_k_matching_replays_verify_only_when_every_dispute_is_answered() -> None:
    claim = Experiment(problem=PROBLEM.id, strategy={"strategy.py": "x=2"}, author="p1",
                       outcome=Outcome(status="ok", score=2.0))
    ledger = Ledger(me="me", config=TrustConfig(k=2))
    for voter in ("p2", "p3", "p4", "p5"):  # our replays reproduced a claim of each: they vote
        ledger.standing[voter] = ledger.config.match_reward

    def vote(author: str, match: bool) -> None:
        outcome = claim.outcome if match else Outcome(status="ok", score=1.0)
        ledger.note(Verification(experiment=claim.id, match=match, outcome=outcome,
                                 author=author))

    vote("p2", True)
    assert ledger.verdict(claim) == ("pending", 1)
    vote("p3", False)
    assert ledger.verdict(claim) == ("disputed", 1)
    vote("p4", True)
    assert ledger.verdict(claim) == ("disputed", 2)  # 2 matches, 1 mismatch: not answered yet
    vote("p5", True)
    assert ledger.verdict(claim) == ("verified", 3) and ledger.verified(claim)
    ledger.record_replay(claim, False)  # our own replay outweighs every vote
    assert ledger.verdict(claim) == ("disputed", 3) and not ledger.verified(claim)
