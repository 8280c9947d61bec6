"""What a finished simulation measured, as plain values: the reports read these, never the running
simulation and its live nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from node.sim.config import SimConfig
from research_dag import DERIVED_AUTHOR, Problem, ResearchDag, lineage_depth


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
    knowledge: dict[str, Any] = field(default_factory=dict)
    stop_reason: str = ""  # "target_reached", "rounds", or why the run was stopped early


def knowledge_measures(node: int, dag: ResearchDag, derived: dict[str, int]) -> dict[str, Any]:
    """What one node knows at the end (issue 11): its own derivation's patterns by status and
    hypotheses by state (`NodeKnowledge.counts_of`), the derived records its DAG holds (its own
    and peers' alike), and the DAG's size and depth (the longest lineage of experiments)."""
    held = dict.fromkeys(("pattern", "hypothesis", "verdict"), 0)
    for record_id in dag.ids():
        header = dag.header(record_id)
        if header is not None and header.kind in held and header.author == DERIVED_AUTHOR:
            held[header.kind] += 1
    depth = max((lineage_depth(dag.experiment_headers(p.id)) for p in dag.problems()), default=0)
    return {
        "node": node,
        "patterns": {status: derived[status] for status in ("candidate", "live", "retired")},
        "hypotheses": {state: derived[state] for state in ("open", "confirmed", "refuted",
                                                       "withdrawn")},
        "derived_records_held": held,
        "dag": {"records": len(dag), "depth": depth},
    }

