"""A record must arrive on the gossip topic it belongs to (docs/protocol.md section 3): before,
an experiment published on the problems topic was accepted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hostile_peer import (
    ATTACKER,
    claim_fields,
    connect,
    envelope,
    open_victim,
    signed_bytes,
)

from node.net import PROBLEMS_TOPIC, problem_topic
from node.net.memory import MemoryHub
from node.problem import baseline_files
from node.sim import settle
from research_dag import (
    DERIVED_AUTHOR,
    Experiment,
    Hypothesis,
    Outcome,
    Pattern,
    Problem,
    Record,
    Verdict,
    Verification,
    encode_record,
)
from sandbox import Runtime


async def test_records_on_the_wrong_topic_are_refused_and_counted(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    hub = MemoryHub(seed=91)
    async with open_victim(hub, runtime, tmp_path) as victim, \
            hub.open_node(ATTACKER.peer_id) as attacker:
        problem = await victim.pose(probe_problem)
        await victim.join_problems()
        other = await victim.pose(probe_problem.model_copy(update={"name": "other"}))
        await victim.join_problems()
        await connect(hub, attacker, victim)
        [baseline] = victim.dag.experiments(problem.id)
        claim = claim_fields(problem, baseline_files(problem), created_ms=5)
        vote = Verification(experiment=baseline.id, match=False,
                            outcome=Outcome(status="crash")).plain()
        misplaced = [
            (PROBLEMS_TOPIC, claim),  # an experiment on the problems topic (the JS peer's find)
            (problem_topic(other.id), {**claim, "created_ms": 6}),  # another problem's topic
            (problem_topic(other.id), vote),  # a verification of an experiment of `problem`
            (problem_topic(problem.id), probe_problem.plain()),
        ]
        for topic, fields in misplaced:
            await attacker.publish(topic, envelope(signed_bytes(fields)))
        await settle(hub, [victim])
        assert victim.stats.drops.counts == {"topic": len(misplaced)}
        assert victim.stats.received == 0
        assert victim.network.score(ATTACKER.peer_id) < 0  # type: ignore[attr-defined]
        # Such a claim on its own problem's topic is taken in (other bytes: the message id is
        # a content hash, and the network remembers the ids it saw).
        honest = {**claim, "created_ms": 7}
        await attacker.publish(problem_topic(problem.id), envelope(signed_bytes(honest)))
        await settle(hub, [victim])
        assert victim.stats.received == 1
        assert any(isinstance(r, Experiment) and r.created_ms == 7
                   for r in victim.dag.experiments(problem.id))


async def test_derived_records_travel_on_their_topics_unsigned(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    """A Pattern on the problems topic; a Hypothesis on its target problem's; a Verdict on its
    hypothesis's problem's, all unsigned with author "derived" (docs/protocol.md, "Derived
    records"). Anywhere else, or unsigned with another author, or another kind unsigned with
    that author, the message is refused."""
    hub = MemoryHub(seed=92)
    async with open_victim(hub, runtime, tmp_path) as victim, \
            hub.open_node(ATTACKER.peer_id) as attacker:
        problem = await victim.pose(probe_problem)
        await victim.join_problems()
        other = await victim.pose(probe_problem.model_copy(update={"name": "other"}))
        await victim.join_problems()
        await connect(hub, attacker, victim)
        [baseline] = victim.dag.experiments(problem.id)
        pattern = Pattern(mutation_kind="prune:weight_vector", operation="prune",
                          affordance="weight_vector", text="pruning helps",
                          supporting=[baseline.id], problems=[problem.id], status="candidate",
                          author=DERIVED_AUTHOR,
                          created_ms=max(baseline.created_ms, problem.created_ms))
        hypothesis = Hypothesis(pattern=pattern.id, problem=problem.id,
                                mutation_kind="prune:weight_vector", text="here too",
                                author=DERIVED_AUTHOR, created_ms=pattern.created_ms)
        verdict = Verdict(hypothesis=hypothesis.id, result="refuted", tests=[baseline.id],
                          author=DERIVED_AUTHOR, created_ms=pattern.created_ms)
        victim.dag.add(hypothesis)  # as if derived here: a verdict on it has a topic
        accepted = ((PROBLEMS_TOPIC, pattern), (problem_topic(problem.id), verdict))
        for topic, record in accepted:
            await attacker.publish(topic, envelope(encode_record(record)))
            await settle(hub, [victim])
        # the validator passes both; intake stores neither, as the victim does not derive them
        # (tests/test_redteam_knowledge.py)
        assert not {pattern.id, verdict.id} & victim.dag.ids()
        assert victim.stats.drops.counts == {"underived": 2}
        # Each refused one has bytes of its own (gossip ids are content hashes), and each topic
        # takes two at most (past three, GossipSub would drop the sender's messages unread).
        refused: list[tuple[str, Record, str]] = [
            (problem_topic(problem.id), pattern.model_copy(update={"text": "1"}), "topic"),
            (PROBLEMS_TOPIC, hypothesis.model_copy(update={"text": "2"}), "topic"),
            (problem_topic(other.id), hypothesis.model_copy(update={"text": "3"}), "topic"),
            (problem_topic(other.id), verdict.model_copy(update={"text": "4"}), "topic"),
            (PROBLEMS_TOPIC, pattern.model_copy(update={"author": "local"}), "signature"),
            (problem_topic(problem.id), baseline.model_copy(
                update={"author": DERIVED_AUTHOR, "signature": b""}), "signature"),
        ]
        for topic, bad, _ in refused:
            await attacker.publish(topic, envelope(encode_record(bad)))
        await settle(hub, [victim])
        assert victim.stats.drops.counts == Counter(
            ["underived"] * 2 + [reason for _, _, reason in refused])
        assert victim.stats.refused == 0
