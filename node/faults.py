"""Faults a simulated node can be told to commit (NodeConfig.liar): the records a lying peer
makes, so the swarm's defences are tested against them."""

from __future__ import annotations

from research_dag import Direction, Experiment, Record


def inflated_claim(honest: Record | None, direction: Direction) -> Experiment | None:
    """An unsigned copy of `honest` (an experiment we evaluated) claiming a much better score
    than it got; None when there is no score to inflate."""
    if not isinstance(honest, Experiment) or honest.outcome.score is None:
        return None
    score = honest.outcome.score + (1.0 if direction == "maximize" else -1.0)
    return honest.model_copy(  # model_copy(update=...) drops the cached id
        update={
            "outcome": honest.outcome.model_copy(update={"score": score}),
            "description": honest.description + " ",
            "signature": b"",
        }
    )
