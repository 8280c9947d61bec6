"""What a node's records say to a person: per problem the verified best and a leaderboard with
the swarm's verdict on each claim, and per peer its standing (issue 8, finding 12). Read from
the DAG's headers: a record is loaded only where a view shows or judges by more than its
header holds (issue 10: a store-backed DAG keeps few whole records)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.trust import Ledger, Verdict
from research_dag import Experiment, Header, ResearchDag, Verification

PAGE = 1024  # whole records loaded at a time where a view must read every one of a kind
# Verifications read at a time: a peer's may hold a 150 KB outcome (256 items and details).
VERIFICATION_PAGE = 256

# Leaderboard order: what may be shown as a best first, then what is waiting, then the refuted.
_RANK: dict[Verdict, int] = {"own": 0, "verified": 0, "pending": 1, "disputed": 2}


def headers_by_kind(dag: ResearchDag) -> dict[str, list[Header]]:
    """Every record's header, by kind, each list ordered as `dag.records(kind)` is."""
    found = [header for record_id in dag.ids() if (header := dag.header(record_id)) is not None]
    found.sort(key=lambda header: (header.created_ms, header.id))
    kinds: dict[str, list[Header]] = {}
    for header in found:
        kinds.setdefault(header.kind, []).append(header)
    return kinds


def note_verifications(dag: ResearchDag, ledger: Ledger,
                       verifications: list[Header] | None = None,
                       orphaned: Callable[[str], None] | None = None,
                       ) -> list[tuple[Header, bool]]:
    """Notes every stored verification in `ledger`, VERIFICATION_PAGE whole records at a time;
    returns the ledger owner's own replays as (the claim's header, matched), for the caller to
    record (a claim may be 1 MB: its header is all that needs). `verifications`: their
    headers, if at hand. `orphaned`: given, a verification of an experiment not held is not
    noted but its experiment's id is passed to it (votes on nothing held cost memory per
    record a stranger signs: node/swarm_intake.py notes them when the experiment comes)."""
    if verifications is None:
        verifications = dag.headers_of("verification")
    replays: list[tuple[Header, bool]] = []
    for start in range(0, len(verifications), VERIFICATION_PAGE):
        page = verifications[start : start + VERIFICATION_PAGE]
        records = [r for r in dag.get_many(header.id for header in page)
                   if isinstance(r, Verification)]
        held = dag.held(r.experiment for r in records) if orphaned is not None else None
        for record in records:
            if held is not None and record.experiment not in held:
                assert orphaned is not None
                orphaned(record.experiment)
                continue
            ledger.note(record)
            if record.author == ledger.me:
                claimed = dag.header(record.experiment)
                if claimed is not None and claimed.kind == "experiment":
                    replays.append((claimed, record.match))
    return replays


def ledger_from(dag: ResearchDag, me: str, verifications: list[Header] | None = None) -> Ledger:
    """This node's ledger as its records leave it: everyone's verifications noted, our own
    replays moving their authors' standing. `verifications`: their headers, if at hand."""
    ledger = Ledger(me=me)
    for claimed, matched in note_verifications(dag, ledger, verifications):
        ledger.record_replay(claimed, matched)
    return ledger


def verified_best(dag: ResearchDag, ledger: Ledger, problem_id: str) -> Experiment | None:
    """The best that may be shown for a problem: never an unverified or disputed claim."""
    return dag.best(problem_id, ledger.verified)


def standings(
    dag: ResearchDag, ledger: Ledger, experiments: list[Header] | None = None
) -> dict[str, dict[str, Any]]:
    """Per peer (not us): its standing in our ledger and its claims by verdict.
    `experiments`: every experiment's header, if at hand."""
    if experiments is None:
        experiments = headers_by_kind(dag).get("experiment", [])
    table: dict[str, dict[str, Any]] = {}
    for header in experiments:
        if header.author in (ledger.me, "local"):
            continue
        row = table.setdefault(header.author, {
            "standing": ledger.standing_of(header.author), "ignored": ledger.ignored(header.author),
            "verified": 0, "pending": 0, "disputed": 0})
        verdict, _ = ledger.verdict_of(header, dag.get)
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
        # A header's score is an ok experiment's score.
        judged = [(ledger.verdict_of(h, dag.get), h) for h in dag.experiment_headers(problem.id)
                  if h.score is not None]
        judged.sort(key=lambda pair: (_RANK[pair[0][0]], sign * (pair[1].score or 0.0),
                                      pair[1].created_ms, pair[1].id))
        rows: list[dict[str, Any]] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        disputed = 0
        for (verdict, matches), header in judged:
            disputed += verdict == "disputed"
            if len(rows) >= top:
                continue
            experiment = dag.get(header.id)
            if not isinstance(experiment, Experiment):
                continue
            key = tuple(sorted(experiment.strategy.items()))
            if key in seen:
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
