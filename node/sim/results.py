"""What a finished simulation measured, as plain values: the reports read these, never the running
simulation and its live nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from node.sim.config import SimConfig
from research_dag import DERIVED_AUTHOR, Header, Problem, ResearchDag


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
        "hypotheses": {state: derived[state] for state in ("open", "confirmed", "refuted")},
        "derived_records_held": held,
        "dag": {"records": len(dag), "depth": depth},
    }


def lineage_depth(headers: list[Header]) -> int:
    """The longest chain of experiments, parent to child (a baseline alone is 1)."""
    parent_of = {h.id: h.parent for h in headers}
    known: dict[str, int] = {}
    for start in parent_of:
        chain: list[str] = []
        current: str | None = start
        while current is not None and current in parent_of and current not in known:
            chain.append(current)
            current = parent_of[current]
        base = 0 if current is None else known.get(current, 0)
        for offset, record_id in enumerate(reversed(chain), start=1):
            known[record_id] = base + offset
    return max(known.values(), default=0)
