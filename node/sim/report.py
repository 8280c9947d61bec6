"""Simulation results as the JSON report (`swarm simulate --json`); the dashboard's simulation page
and `--report` draw it (node/web)."""

from __future__ import annotations

from typing import Any

from node.sim.results import SimResults


def build_report(results: SimResults) -> dict[str, Any]:
    config = results.config
    problem = results.problem
    honest = [s for s in results.nodes if not s.liar]
    reached = [s.reached_target_round for s in honest if s.reached_target_round is not None]
    last = results.history[-1] if results.history else {}
    return {
        "config": {
            "nodes": config.nodes,
            "network": config.network,
            "rounds": config.rounds,
            "faults": config.faults.__dict__,
            "seed": config.seed,
            "k": config.k,
            "problem": {
                "id": problem.id,
                "name": problem.name,
                "direction": problem.metric.direction,
                "target": problem.metric.target,
            },
        },
        "rounds_run": results.rounds_run,
        "stop_reason": results.stop_reason,
        "nodes": [
            {
                "index": s.index,
                "peer_id": s.peer_id,
                "liar": s.liar,
                "spammer": s.spammer,
                "churned": s.churned,
                "best": s.best_by_round[-1] if s.best_by_round else None,
                "reached_target_round": s.reached_target_round,
                "best_by_round": s.best_by_round,
            }
            for s in results.nodes
        ],
        "swarm": {
            "baseline": results.baseline,
            "best": last.get("swarm_best"),
            "first_reached_target_round": min(reached) if reached else None,
            "all_honest_reached_round": max(reached) if len(reached) == len(honest) else None,
            "messages": last.get("messages", 0),
            "verifications": last.get("verifications", 0),
            "disputes": last.get("disputes", 0),
            "evaluations": last.get("evaluations", 0),
            "fuel": last.get("fuel", 0),
            "seconds": round(sum(row.get("seconds", 0.0) for row in results.history), 4),
            "fake_claims": results.fake_claims,
            "accepted_fake_claims": results.accepted_fake_claims,
        },
        "knowledge": results.knowledge,
        "history": results.history,
    }
