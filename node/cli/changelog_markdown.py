"""`swarm log PROBLEM --markdown`: the changelog as a document a person or a model reads, every
attempt with its hypothesis, change (in the shared vocabulary), delta, verdict and the patterns
it supported, grouped by phase (the runs of attempts between new bests)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from node.untrusted_text import visible

if TYPE_CHECKING:
    from node.store import RecordStore
    from research_dag import Experiment, Hypothesis, Pattern, Problem

TEXT = 300  # characters of a peer's free text per field
# What Markdown reads as syntax within a line: escaped, so a peer's text never makes a link,
# an image, code, emphasis, a table cell, raw HTML or a character reference of its own
# (`&#x202e;` rendered a raw bidi override). (Headings and list items start a line: a peer's
# text never does, `visible` makes its newlines escapes.)
_SYNTAX = re.compile(r"([\\`*_\[\]<>|~&])")
VERDICTS = ("Verdicts: **kept** beat the best before it; **discarded** did not; **unverified** "
            "is a peer's claim this node has not reproduced (shown, never kept).")


def md(text: str, limit: int = TEXT) -> str:
    """A peer's text as one line of Markdown: cut, every control and bidi character an escape
    (`visible`), every Markdown character escaped."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _SYNTAX.sub(r"\\\1", visible(text, one_line=True))


def knowledge_of(store: RecordStore, problem_id: str) -> tuple[list[Pattern], list[Hypothesis]]:
    """The patterns held (any problem's: their evidence names experiments) and the hypotheses
    targeting this problem."""
    from research_dag import Hypothesis, Pattern

    patterns = [p for p in store.iter_records(kind="pattern") if isinstance(p, Pattern)]
    hypotheses = [h for h in store.iter_records(kind="hypothesis", problem=problem_id)
                  if isinstance(h, Hypothesis)]
    return patterns, hypotheses


def changelog_markdown(problem: Problem, experiments: list[Experiment], rows: list[dict[str, Any]],
                       patterns: Iterable[Pattern], hypotheses: Iterable[Hypothesis]) -> str:
    """The document; `rows` are `node.report.changelog`'s for `experiments`, in that order."""
    supported = _supported(patterns)
    tested = {h.id: h for h in hypotheses}
    scores = {e.id: (e.outcome.score if e.outcome.status == "ok" else None) for e in experiments}
    metric = problem.metric
    target = "" if metric.target is None else f", target {metric.target:.6g}"
    statuses = [row["status"] for row in rows]
    kept = [row["score"] for row in rows if row["status"] in ("keep", "baseline")]
    lines = [f"# {md(problem.name)}: changelog", "",
             f"Metric: {md(metric.name)} ({metric.direction}{target}). {len(rows)} attempts: "
             f"{statuses.count('keep')} kept, {statuses.count('discard')} discarded, "
             f"{statuses.count('unverified')} unverified, "
             f"{sum(1 for s in statuses if s not in _NOT_FAILED)} failed"
             + (f"; {_score(kept[0])} → best {_score(kept[-1])}." if kept else "."),
             "", VERDICTS, ""]
    if not rows:
        lines.append("No attempt recorded yet.")
    for title, members in _phases(rows):
        lines += [f"## {title}", ""]
        for index in members:
            lines += _attempt(experiments[index], rows[index], scores, supported, tested)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


_NOT_FAILED = frozenset({"keep", "drift", "discard", "baseline", "unverified"})


def _phases(rows: list[dict[str, Any]]) -> list[tuple[str, list[int]]]:
    """Phase 0 is everything up to the first baseline or keep; each later phase runs from the
    attempt after a new best to the next new best (its last attempt); what follows the last
    best is the open phase."""
    phases: list[tuple[str, list[int]]] = []
    current: list[int] = []
    best: float | None = None
    for index, row in enumerate(rows):
        current.append(index)
        if row["status"] not in ("keep", "baseline"):
            continue
        number = len(phases)
        tries = _tally(rows, current)
        if best is None or row["status"] == "baseline":
            title = f"Phase {number}: baseline {_score(row['score'])}{tries}"
        else:
            title = f"Phase {number}: {_score(best)} → {_score(row['score'])}{tries}"
        phases.append((title, current))
        best, current = row["score"], []
    if current:
        since = "" if best is None else f" since the best {_score(best)}"
        phases.append((f"Phase {len(phases)}: no improvement yet{since}"
                       f"{_tally(rows, current)}", current))
    return phases


def _tally(rows: list[dict[str, Any]], members: list[int]) -> str:
    failed = sum(1 for i in members if rows[i]["status"] not in _NOT_FAILED)
    return (f" ({len(members)} attempt{'s' if len(members) != 1 else ''}"
            + (f", {failed} failed" if failed else "") + ")")


def _attempt(experiment: Experiment, row: dict[str, Any], scores: dict[str, float | None],
             supported: dict[str, list[Pattern]], tested: dict[str, Hypothesis]) -> list[str]:
    score = row["score"]
    verdict = {"keep": "kept", "discard": "discarded", "drift": "taken by neutral drift"}.get(
        row["status"], row["status"])
    if row["status"] not in _NOT_FAILED:
        verdict = "failed"
    parent = None if experiment.parent is None else scores.get(experiment.parent)
    delta = "" if score is None or parent is None else f" (Δ {score - parent:+.4g} vs parent)"
    shown = _score(score) if score is not None else experiment.outcome.status
    lines = [f"- `{experiment.id[:10]}` **{verdict}** {shown}{delta}: "
             f"{md(experiment.mutation_kind, 60)}: {md(experiment.description)}"]
    for change in experiment.changes or ():
        note = f" ({md(change.note, 100)})" if change.note else ""
        lines.append(f"  - change: {change.operation} {change.affordance} at "
                     f"{md(change.site, 100)}{note}")
    if experiment.hypothesis:
        lines.append(f"  - hypothesis: {md(experiment.hypothesis)}")
    if row.get("gate"):  # a problem that asks a model: the noise gate's interval and test
        lines.append(f"  - noise gate: {md(row['gate'])}")
    if experiment.hypothesis_id is not None:
        hypothesis = tested.get(experiment.hypothesis_id)
        text = "(not held)" if hypothesis is None else md(hypothesis.text)
        lines.append(f"  - tests hypothesis `{experiment.hypothesis_id[:10]}`: {text}")
    for pattern in supported.get(experiment.id, []):
        lines.append(f"  - supports pattern `{pattern.id[:10]}` "
                     f"({md(pattern.mutation_kind, 60)}): {md(pattern.text)}")
    return lines


def _supported(patterns: Iterable[Pattern]) -> dict[str, list[Pattern]]:
    """Experiment id -> the patterns citing it as support, one per class (the newest snapshot
    citing it: older ones name the same evidence)."""
    newest: dict[tuple[str, str], Pattern] = {}
    for pattern in patterns:
        for experiment_id in pattern.supporting:
            key = (experiment_id, pattern.mutation_kind)
            held = newest.get(key)
            if held is None or (held.created_ms, held.id) < (pattern.created_ms, pattern.id):
                newest[key] = pattern
    result: dict[str, list[Pattern]] = {}
    for (experiment_id, _), pattern in sorted(newest.items()):
        result.setdefault(experiment_id, []).append(pattern)
    return result


def _score(score: float | None) -> str:
    return "-" if score is None else f"{score:.6g}"
