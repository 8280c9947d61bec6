"""What a node's records say to a person: per problem the verified best and a leaderboard with
the swarm's verdict on each claim, and per peer its standing (issue 8, finding 12)."""

from __future__ import annotations

from typing import Any

from node.trust import Ledger, Verdict
from research_dag import Experiment, ResearchDag, Verification

# Leaderboard order: what may be shown as a best first, then what is waiting, then the refuted.
_RANK: dict[Verdict, int] = {"own": 0, "verified": 0, "pending": 1, "disputed": 2}


def ledger_from(dag: ResearchDag, me: str) -> Ledger:
    """This node's ledger as its records leave it: everyone's verifications noted, our own
    replays moving their authors' standing."""
    ledger = Ledger(me=me)
    for record in dag.records("verification"):
        if isinstance(record, Verification):
            ledger.note(record)
            claimed = dag.get(record.experiment)
            if record.author == me and isinstance(claimed, Experiment):
                ledger.record_replay(claimed, record.match)
    return ledger


def verified_best(dag: ResearchDag, ledger: Ledger, problem_id: str) -> Experiment | None:
    """The best that may be shown for a problem: never an unverified or disputed claim."""
    return dag.best(problem_id, ledger.verified)


def standings(dag: ResearchDag, ledger: Ledger) -> dict[str, dict[str, Any]]:
    """Per peer (not us): its standing in our ledger and its claims by verdict."""
    table: dict[str, dict[str, Any]] = {}
    for record in dag.records("experiment"):
        if not isinstance(record, Experiment) or record.author in (ledger.me, "local"):
            continue
        row = table.setdefault(record.author, {
            "standing": ledger.standing_of(record.author), "ignored": ledger.ignored(record.author),
            "verified": 0, "pending": 0, "disputed": 0})
        verdict, _ = ledger.verdict(record)
        row[verdict] += 1
    return {author: table[author] for author in sorted(table)}


def leaderboard_rows(dag: ResearchDag, me: str, wanted: str | None, top: int
                     ) -> list[dict[str, Any]]:
    ledger = ledger_from(dag, me)
    boards = []
    for problem in dag.problems():
        if wanted is not None and not (problem.id.startswith(wanted) or problem.name == wanted):
            continue
        metric = problem.metric
        sign = -1.0 if metric.direction == "maximize" else 1.0
        judged = [(ledger.verdict(e), e) for e in dag.experiments(problem.id)
                  if e.outcome.status == "ok" and e.outcome.score is not None]
        judged.sort(key=lambda pair: (_RANK[pair[0][0]], sign * (pair[1].outcome.score or 0.0),
                                      pair[1].created_ms, pair[1].id))
        rows: list[dict[str, Any]] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        disputed = 0
        for (verdict, matches), experiment in judged:
            disputed += verdict == "disputed"
            key = tuple(sorted(experiment.strategy.items()))
            if key in seen or len(rows) >= top:
                continue
            seen.add(key)
            rows.append({"id": experiment.id, "score": experiment.outcome.score,
                         "verdict": verdict, "matches": matches, "author": experiment.author,
                         "mutation_kind": experiment.mutation_kind})
        best = verified_best(dag, ledger, problem.id)
        boards.append({"id": problem.id, "name": problem.name, "direction": metric.direction,
                       "best": None if best is None else best.outcome.score,
                       "best_experiment": None if best is None else best.id,
                       "rows": rows, "disputed": disputed})
    return boards
