"""What a finished simulation measured, as plain values: the reports read these, never the running
simulation and its live nodes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.sim.config import SimConfig
from research_dag import Problem


@dataclass(frozen=True)
class NodeResult:
    """One simulated node: its role and its best score after each round."""

    index: int
    peer_id: str
    liar: bool
    spammer: bool
    churned: bool
    best_by_round: list[float | None]
    reached_target_round: int | None


@dataclass(frozen=True)
class SimResults:
    """The whole swarm: per-round totals in `history` (one dict per round, JSON-ready)."""

    config: SimConfig
    problem: Problem
    rounds_run: int
    nodes: tuple[NodeResult, ...]
    baseline: float | None
    history: list[dict[str, Any]]
    fake_claims: int
    accepted_fake_claims: int
