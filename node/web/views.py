"""The dashboard's JSON documents for the overview, a problem (summary, chart points, pass rates,
changelog pages) and one record: plain values from DashboardState, sanitised on the way out."""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping
from typing import Any

from node.leaderboard import standings
from node.web.series import MAX_POINTS, columns, pass_rates, pick
from node.web.state import DashboardState, Entry, ProblemLog
from research_dag import Experiment, Hypothesis, Pattern, Problem, Record, Verdict, Verification

PAGE_ROWS = 50  # changelog rows per page
MAX_PAGE_ROWS = 500
SEARCH_SCAN = 20_000  # records a text filter reads per request at most
LINEAGE = 60  # ancestors shown with a record
DIFF_LINES = 2000  # lines of a diff shown at most
RATE_WINDOW_MS = 10 * 60_000  # experiments per minute: over the last ten minutes
ITEMS_CACHE = 50_000  # experiments whose checklist results are kept between polls


def overview(state: DashboardState) -> dict[str, Any]:
    dag = state.dag
    problems = []
    now = int(time.time() * 1000)
    for log in state.logs.values():
        problem = log.problem
        recent = sum(1 for e in log.entries if now - RATE_WINDOW_MS <= e.header.created_ms <= now)
        problems.append({
            "id": problem.id, "name": problem.name, "metric": problem.metric.name,
            "direction": problem.metric.direction, "target": problem.metric.target,
            "baseline": log.baseline, "best": log.best, "best_experiment": log.best_id,
            "attempts": len(log.entries), "nodes": len(log.authors),
            "per_minute": round(recent / (RATE_WINDOW_MS / 60_000), 2),
        })
    peers = {}
    if dag is not None:
        headers = [e.header for log in state.logs.values() for e in log.entries]
        peers = standings(dag, state.ledger, headers)
    return {"me": state.source.me, "records": 0 if dag is None else len(dag),
            "problems": problems, "peers": peers, "version": state.version,
            "simulation": state.source.simulation() is not None}


def problem_summary(state: DashboardState, log: ProblemLog) -> dict[str, Any]:
    """Everything on a problem's page but the points, rates and changelog: its metric, target,
    checklist, nodes, and the best trusted strategy with its diff against the baseline."""
    problem = log.problem
    best = None
    if log.best_id is not None:
        record = state.require_dag().get(log.best_id)
        if isinstance(record, Experiment):
            baseline_files = _baseline_files(problem)
            best = {"id": record.id, "score": record.outcome.score, "author": record.author,
                    "mutation_kind": record.mutation_kind, "description": record.description,
                    "strategy": dict(record.strategy),
                    "diff": _diff(baseline_files, record.strategy, "baseline", "best")}
    return {
        "id": problem.id, "name": problem.name, "statement": problem.statement[:2000],
        "metric": problem.metric.name, "direction": problem.metric.direction,
        "target": problem.metric.target, "checklist": list(problem.checklist),
        "authors": [{"id": a, "me": a == state.source.me} for a in log.authors],
        "attempts": len(log.entries), "baseline": log.baseline, "best": log.best,
        "best_experiment": best, "version": state.version,
        "counts": _counts(log.entries),
    }


def points(log: ProblemLog, after: int, limit: int = MAX_POINTS) -> dict[str, Any]:
    """The chart's points from position `after` on (downsampled past `limit`); `next` is the
    cursor for the next request (`?after=next` returns only what is new)."""
    after = max(0, min(after, len(log.entries)))
    tail = log.entries[after:]
    positions = [after + p for p in pick(tail, limit)]
    return {"next": len(log.entries), "total": len(log.entries),
            "downsampled": len(positions) < len(tail),
            "authors": log.authors, **columns(log.entries, positions)}


def rates(state: DashboardState, log: ProblemLog) -> dict[str, Any]:
    dag = state.require_dag()
    known = state.items

    def items_of(ids: list[str]) -> dict[str, dict[str, bool]]:
        missing = [i for i in ids if i not in known]
        if len(known) + len(missing) > ITEMS_CACHE:
            known.clear()
        known.update((r.id, dict(r.outcome.items)) for r in dag.get_many(missing)
                     if isinstance(r, Experiment))
        return {i: known[i] for i in ids if i in known}

    return pass_rates(log.entries, items_of)


def changelog(state: DashboardState, log: ProblemLog, params: Mapping[str, str]
              ) -> dict[str, Any]:
    """One page of the changelog, newest first, filtered by status, author (an index into the
    problem's authors) and text (in the change's kind, description or hypothesis)."""
    offset = _int(params.get("offset"), 0, 0, len(log.entries))
    limit = _int(params.get("limit"), PAGE_ROWS, 1, MAX_PAGE_ROWS)
    status = params.get("status") or ""
    author = _int(params.get("author"), -1, -1, len(log.authors))
    text = (params.get("q") or "").strip().lower()[:200]
    dag = state.require_dag()
    order = list(range(len(log.entries) - 1, -1, -1))
    matching = [p for p in order if (not status or log.entries[p].status == status)
                and (author < 0 or log.entries[p].author == author)]
    rows: list[dict[str, Any]] = []
    position = offset
    scanned = 0
    while position < len(matching) and len(rows) < limit and scanned < SEARCH_SCAN:
        chunk = matching[position : position + max(limit, 256 if text else limit)]
        records = {r.id: r for r in dag.get_many(log.entries[p].header.id for p in chunk)}
        for p in chunk:
            position += 1
            scanned += 1
            record = records.get(log.entries[p].header.id)
            if not isinstance(record, Experiment):
                continue
            haystack = f"{record.mutation_kind}\n{record.description}\n{record.hypothesis}"
            if text and text not in haystack.lower():
                continue
            rows.append(_row(state, log, log.entries[p], record))
            if len(rows) >= limit:
                break
    return {"rows": rows, "offset": offset, "next": position if position < len(matching) else None,
            "matching": None if text else len(matching), "total": len(log.entries)}


def _row(state: DashboardState, log: ProblemLog, entry: Entry, record: Experiment
         ) -> dict[str, Any]:
    verdict, matches = state.ledger.verdict(record)
    parent = None if entry.header.parent is None else log.index.get(entry.header.parent)
    parent_score = None if parent is None else log.entries[parent].header.score
    score = entry.header.score
    delta = None if score is None or parent_score is None else score - parent_score
    return {"id": record.id, "n": log.index[record.id], "t": entry.t_ms / 1000,
            "parent": record.parent, "score": score, "delta": delta, "status": entry.status,
            "outcome": record.outcome.status, "author": record.author, "author_index": entry.author,
            "verdict": verdict, "verifications": matches, "mutation_kind": record.mutation_kind,
            "description": record.description[:500], "hypothesis": record.hypothesis[:500]}


def record_detail(state: DashboardState, record_id: str) -> dict[str, Any] | None:
    """Any record, its fields as a person reads them, its lineage (experiments), what links to
    it, and for an experiment the diff against its parent."""
    dag = state.require_dag()
    record = dag.get(record_id)
    if record is None:
        return None
    document: dict[str, Any] = {"id": record.id, "kind": record.kind, "author": record.author,
                                "created_ms": record.created_ms, "fields": _fields(record)}
    if isinstance(record, Experiment):
        parent = dag.get(record.parent) if record.parent else None
        before = parent.strategy if isinstance(parent, Experiment) else (
            _baseline_files(problem) if isinstance(problem := dag.get(record.problem), Problem)
            else {})
        document["diff"] = record.diff or _diff(before, record.strategy, "parent", "this")
        document["strategy"] = dict(record.strategy)
        verdict, matches = state.ledger.verdict(record)
        document["verdict"] = {"verdict": verdict, "matches": matches}
        document["verifications"] = [
            {"id": v.id, "author": v.author, "match": v.match, "status": v.outcome.status,
             "score": v.outcome.score} for v in dag.verifications_of(record.id)[:50]]
        chain = dag.lineage(record.id)[-LINEAGE:]
        document["lineage"] = [{"id": e.id, "score": e.outcome.score,
                                "mutation_kind": e.mutation_kind} for e in chain]
    document["links"] = [{"id": target, "rel": rel} for _, target, rel in
                         dag.edges_from([record.id])[:200]]
    return document


def _fields(record: Record) -> dict[str, Any]:
    if isinstance(record, Problem):
        return {"name": record.name, "statement": record.statement[:4000],
                "metric": record.metric.name, "direction": record.metric.direction,
                "target": record.metric.target, "checklist": list(record.checklist),
                "domains": list(record.domains), "mutable": list(record.mutable)}
    if isinstance(record, Experiment):
        outcome = record.outcome
        return {"problem": record.problem, "parent": record.parent,
                "mutation_kind": record.mutation_kind, "description": record.description,
                "hypothesis": record.hypothesis, "mutator": record.mutator,
                "status": outcome.status, "score": outcome.score, "items": dict(outcome.items),
                "details": dict(outcome.details), "fuel": outcome.fuel,
                "stderr_tail": outcome.stderr_tail}
    if isinstance(record, Verification):
        return {"experiment": record.experiment, "match": record.match,
                "status": record.outcome.status, "score": record.outcome.score}
    if isinstance(record, Pattern):
        return {"mutation_kind": record.mutation_kind, "text": record.text,
                "status": record.status or ("retired" if record.retired else "live"),
                "supporting": len(record.supporting), "contradicting": len(record.contradicting),
                "success_rate": record.success_rate, "mean_delta": record.mean_delta,
                "domains": list(record.domains)}
    if isinstance(record, Hypothesis):
        return {"pattern": record.pattern, "problem": record.problem,
                "mutation_kind": record.mutation_kind, "text": record.text,
                "expected_lift": record.expected_lift}
    if isinstance(record, Verdict):
        return {"hypothesis": record.hypothesis, "result": record.result,
                "tests": len(record.tests), "text": record.text}
    return {}


def _baseline_files(problem: Problem) -> dict[str, str]:
    files = {}
    for path in problem.mutable:
        data = problem.files.get(path)
        if data is not None:
            files[path] = data.decode("utf-8", errors="replace")
    return files


def _diff(before: Mapping[str, str], after: Mapping[str, str], old: str, new: str) -> str:
    lines: list[str] = []
    for path in sorted(set(before) | set(after)):
        lines += difflib.unified_diff(
            before.get(path, "").splitlines(), after.get(path, "").splitlines(),
            f"{old}/{path}", f"{new}/{path}", lineterm="", n=2)
        if len(lines) > DIFF_LINES:
            return "\n".join(lines[:DIFF_LINES]) + "\n... (diff cut)"
    return "\n".join(lines)


def _counts(entries: list[Entry]) -> dict[str, int]:
    counts = dict.fromkeys(("baseline", "keep", "discard", "failed", "unverified"), 0)
    for entry in entries:
        counts[entry.status] += 1
    return counts


def _int(raw: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    return max(low, min(value, high))
