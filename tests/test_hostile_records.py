"""Signed but hostile records sent to a real node (issue 8, findings 1 and 2): a claim whose
files would land outside the sandbox's staging directory, a claim naming files its problem does
not declare, a problem whose mutable file is missing. Each is refused at decode or intake, its
sender or author pays, nothing is written outside a temporary root, and the node keeps working."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hostile_peer import (
    ATTACKER,
    claim_fields,
    connect,
    envelope,
    open_victim,
    signed_bytes,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.identity import sign_record
from node.net.memory import (
    GRAYLIST_THRESHOLD,
    INVALID_MESSAGE_PENALTY,
    MemoryHub,
    MemoryNetwork,
)
from node.net.network import PROBLEMS_TOPIC, SYNC_PROTOCOL, problem_topic
from node.net.wire import (
    SyncSummary,
    SyncSummaryRequest,
    decode_sync_request,
    encode_sync_response,
)
from node.sim import settle
from node.swarm import SwarmNode
from research_dag import Experiment, Outcome, Problem, encoded_record_id
from sandbox import Runtime

EVIL = "import os\nos.system('touch /tmp/pwned')\n"


def _escaping_keys(outer: Path) -> list[str]:
    """Strategy keys that, joined under the victim's staging directory (four levels below
    `outer`), name files in `outer` or elsewhere: the shapes of finding 1."""
    return [
        "../../../../escaped.py",
        "../" * 16 + f"{outer.relative_to('/')}/deep.py",
        str(outer / "absolute.py"),
        "strategy.py/../../../../../dotdot.py",
        "..\\..\\..\\..\\backslash.py",
        ".bashrc",
        "C:/x.py",
        "x\x00.py",
    ]


def _memnet(node: SwarmNode) -> MemoryNetwork:
    assert isinstance(node.network, MemoryNetwork)
    return node.network


async def _joined(victim: SwarmNode, problem: Problem) -> Problem:
    posed = await victim.pose(problem)
    await victim.join_problems()
    return posed


async def test_a_claim_whose_files_leave_the_root_is_refused_and_its_sender_penalised(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    hub = MemoryHub(seed=81)
    async with open_victim(hub, runtime, root) as victim, \
            hub.open_node(ATTACKER.peer_id) as attacker:
        problem = await _joined(victim, probe_problem)
        await connect(hub, attacker, victim)
        keys = _escaping_keys(tmp_path)
        for key in keys:
            claim = signed_bytes(claim_fields(problem, {key: EVIL}))
            await attacker.publish(problem_topic(problem.id), envelope(claim))
        await settle(hub, [victim])
        # Each is rejected by the gossip validator and costs the sender; past the graylist
        # threshold the rest are not even looked at.
        rejected = int(GRAYLIST_THRESHOLD / INVALID_MESSAGE_PENALTY) + 1
        assert len(keys) > rejected
        assert victim.stats.drops.counts["invalid_record"] == rejected
        assert _memnet(victim).score(ATTACKER.peer_id) == INVALID_MESSAGE_PENALTY * rejected
        assert _memnet(victim).ignores(ATTACKER.peer_id)
        assert not [e for e in victim.dag.experiments(problem.id) if e.author != victim.me]
        assert len(victim.claims) == 0
        step = await victim.research_round()  # still researching
        assert step is not None and victim.stats.evaluations == 1
    assert [p.name for p in tmp_path.iterdir()] == ["root"]


async def test_a_claim_naming_undeclared_files_is_refused_at_intake_and_charged_to_its_author(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=82)
    async with open_victim(hub, runtime, tmp_path) as victim, \
            hub.open_node(ATTACKER.peer_id) as attacker:
        problem = await _joined(victim, probe_problem)
        await connect(hub, attacker, victim)
        source = problem.files["strategy.py"].decode()
        inconsistent = [
            claim_fields(problem, {"evil.py": EVIL}),  # valid names, not the problem's files
            claim_fields(problem, {"strategy.py": source, "helper.py": EVIL}),
            claim_fields(problem, {"strategy.py": source}, parent=problem.id),  # not an experiment
        ]
        for fields in inconsistent:
            await attacker.publish(problem_topic(problem.id), envelope(signed_bytes(fields)))
        await settle(hub, [victim])
        assert victim.stats.refused == 3
        assert victim.stats.drops.counts["inconsistent"] == 3
        assert victim.ledger.standing_of(ATTACKER.peer_id) == -3.0
        assert victim.ledger.ignored(ATTACKER.peer_id)  # below the floor: ignored from now on
        assert _memnet(victim).score(ATTACKER.peer_id) == -3 * victim.config.trust.score_penalty
        ids = {encoded_record_id(signed_bytes(fields)) for fields in inconsistent}
        assert not ids & {r.id for r in victim.store.iter_records()}
        assert not ids & {r.id for r in victim.dag.records()}
        assert len(victim.claims) == 0
        assert await victim.research_round() is not None


async def test_a_replay_never_stages_files_the_problem_does_not_declare(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=83)
    async with open_victim(hub, runtime, tmp_path) as victim:
        problem = await _joined(victim, probe_problem)
        forged = sign_record(
            Experiment(problem=problem.id, strategy={"other.py": EVIL},
                       outcome=Outcome(status="ok", score=1e9)),
            ATTACKER,
        )
        assert isinstance(forged, Experiment)
        verification = await victim.replay(forged)  # as if it had slipped past intake
        assert not verification.match
        assert verification.outcome.status == "invalid"
        assert "not the problem's mutable files" in verification.outcome.stderr_tail
        assert verification.outcome.strategy_fuel == 0  # nothing ran
        assert victim.stats.disputes == 1


async def test_a_problem_whose_mutable_file_is_missing_never_reaches_a_loop(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    """Finding 2: this record made research_round raise KeyError in baseline_files."""
    fields = {**probe_problem.plain(), "mutable": ["missing.py"], "name": "broken"}
    broken = signed_bytes(fields)
    hub = MemoryHub(seed=84)
    async with open_victim(hub, runtime, tmp_path) as victim, \
            hub.open_node(ATTACKER.peer_id) as attacker:

        async def serve_sync(peer: str, data: bytes) -> bytes:
            if isinstance(decode_sync_request(data), SyncSummaryRequest):
                return encode_sync_response(SyncSummary([encoded_record_id(broken)]))
            return envelope(broken)

        attacker.handle_requests(SYNC_PROTOCOL, serve_sync)
        await connect(hub, attacker, victim)  # the victim syncs: the fetch brings `broken`
        await attacker.publish(PROBLEMS_TOPIC, envelope(broken))  # and gossip brings it
        await settle(hub, [victim])
        assert victim.stats.drops.counts["invalid_record"] == 2
        assert _memnet(victim).score(ATTACKER.peer_id) == 2 * INVALID_MESSAGE_PENALTY
        assert victim.known_problems() == []
        own = await _joined(victim, probe_problem)
        assert await victim.research_round() is not None
        assert list(victim.loops) == [own.id]


HOSTILE_PARTS = st.sampled_from(
    ["..", ".", "", "x", "strategy.py", "\\", "C:", "~", "\x00", "\n", " ", "-", "<outer>",
     ".bashrc", "evaluate.py", "data", "/"]
)
HOSTILE_KEYS = st.one_of(
    st.lists(HOSTILE_PARTS, min_size=1, max_size=12).map("/".join),
    st.lists(HOSTILE_PARTS, min_size=1, max_size=6).map("".join),
    st.text(max_size=30),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=st.lists(HOSTILE_KEYS, min_size=1, max_size=3))
async def test_hostile_strategy_paths_never_leave_the_root(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path, keys: list[str]
) -> None:
    """Decode -> intake -> replay with any strategy paths: whatever passes each stage, nothing
    is written outside the node's temporary root, and the node takes no exception."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        outer = Path(scratch)
        root = outer / "root"
        root.mkdir()
        strategy = {key.replace("<outer>", str(outer)): EVIL for key in keys}
        hub = MemoryHub(seed=85)
        async with open_victim(hub, runtime, root) as victim:
            problem = await _joined(victim, probe_problem)
            raw: dict[str, Any] = claim_fields(problem, strategy)
            try:
                item = signed_bytes(raw)
            except ValueError:  # not even encodable (e.g. a lone surrogate): never on a wire
                return
            records = victim.decoded.envelope(envelope(item), victim.stats.drops)  # decode
            if records is not None:
                await victim.take(records)  # intake
                await victim.replay_claims()  # replay whatever was queued
                for record in records:  # and any decoded claim, past intake's refusal
                    if isinstance(record, Experiment):
                        await victim.replay(record)
            assert victim.stats.replay_matches == 0
        assert [p.name for p in outer.iterdir()] == ["root"]


async def test_a_refusal_moves_standing_only_between_derivations(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    """A derivation reads the trust ledger in a worker thread; a refusal's penalty waits for
    it to end (else the same history gave another playbook by when a stranger's lie landed)."""
    import trio
    import trio.testing

    from research_dag import decode_record

    hub = MemoryHub(seed=83)
    async with open_victim(hub, runtime, tmp_path) as victim:
        problem = await _joined(victim, probe_problem)
        lie = decode_record(signed_bytes(claim_fields(problem, {"evil.py": EVIL})))
        async with trio.open_nursery() as nursery, victim._deriving:  # a derivation under way
            nursery.start_soon(victim.take, [lie])
            await trio.testing.wait_all_tasks_blocked()
            assert victim.ledger.standing_of(ATTACKER.peer_id) == 0.0
        # The lock released first, then the nursery waited for the intake to go on.
        assert victim.ledger.standing_of(ATTACKER.peer_id) == -1.0
        assert victim.stats.refused == 1
