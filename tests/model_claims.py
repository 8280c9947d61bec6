"""Posting a model-backed claim from a test node: its transcript (optionally with edited
responses, a liar's) and the experiment, sealed, stored and shared."""

from __future__ import annotations

from node.llm import EditingSession
from node.model_evaluations import ModelEvaluations
from node.swarm import SwarmNode
from research_dag import Experiment, Problem


async def post_claim(node: SwarmNode, problem: Problem, skill: str, run: ModelEvaluations,
                     edits: dict[int, str] | None = None) -> Experiment:
    """`node`'s claim of `skill` from its best, its responses at `edits` replaced."""
    files = {"SKILL.md": skill}
    if edits:
        door = EditingSession(run.gateway, problem, edits)  # type: ignore[arg-type]
        outcome = run.evaluator.evaluate(files, door)
        transcript = door.transcript()
    else:
        done = run(files)
        outcome, transcript = done.outcome, done.transcript
    sealed = node._seal(transcript)
    parent = node.loops[problem.id].best
    assert parent is not None
    claim = node._seal(Experiment(problem=problem.id, parent=parent.id, strategy=files,
                                  outcome=outcome, transcript=sealed.id,
                                  created_ms=node.now_ms()))
    for record in (sealed, claim):
        node.store.add(record)
        node._share(record)
    await node.flush()
    return claim
