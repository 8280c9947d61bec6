"""Leaderboards: the best experiments per problem with the swarm's verdict on each."""

from __future__ import annotations

from typing import Any

from node.trust import Ledger
from research_dag import Experiment, ResearchDag, Verification


def ledger_from(dag: ResearchDag, me: str) -> Ledger:
    ledger = Ledger(me=me)
    for record in dag.records("verification"):
        if isinstance(record, Verification):
            ledger.note(record)
            claimed = dag.get(record.experiment)
            if record.author == me and isinstance(claimed, Experiment):
                ledger.record_replay(claimed, record.match)
    return ledger


def leaderboard_rows(dag: ResearchDag, me: str, wanted: str | None, top: int
                     ) -> list[dict[str, Any]]:
    ledger = ledger_from(dag, me)
    boards = []
    for problem in dag.problems():
        if wanted is not None and not (problem.id.startswith(wanted) or problem.name == wanted):
            continue
        metric = problem.metric
        scored = [e for e in dag.experiments(problem.id)
                  if isinstance(e, Experiment) and e.outcome.status == "ok"
                  and e.outcome.score is not None]
        sign = -1.0 if metric.direction == "maximize" else 1.0
        scored.sort(key=lambda e: (sign * (e.outcome.score or 0.0), e.created_ms, e.id))
        rows: list[dict[str, Any]] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        disputed = 0
        for experiment in scored:
            verdict, matches = ledger.verdict(experiment)
            disputed += verdict == "disputed"
            key = tuple(sorted(experiment.strategy.items()))
            if key in seen or len(rows) >= top:
                continue
            seen.add(key)
            rows.append({"id": experiment.id, "score": experiment.outcome.score,
                         "verdict": verdict, "matches": matches, "author": experiment.author,
                         "mutation_kind": experiment.mutation_kind})
        boards.append({"id": problem.id, "name": problem.name, "direction": metric.direction,
                       "rows": rows, "disputed": disputed})
    return boards
