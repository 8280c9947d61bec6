"""What the Research DAG views (`swarm dag ...`, `swarm playbook`) share: a data directory's DAG
opened for reading (headers in memory, whole records loaded only when shown), who "we" are and
our trust ledger, and how a peer's text, a score or a time is cut and shown on one line."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.options import _data_dir, _fail, _open_store
from node.untrusted_text import inline

if TYPE_CHECKING:
    from node.trust import Ledger
    from research_dag import (
        Experiment,
        Header,
        Pattern,
        Problem,
        Record,
        ResearchDag,
        Verdict,
    )

VIEW_CACHE = 1024  # whole records a view keeps in memory; the store holds the rest
LINE_TEXT = 100  # characters of a peer's text shown within one line
STATUSES = ("live", "candidate", "retired")


@dataclass
class View:
    """One data directory's DAG, read-only, and this node's trust in what it holds."""

    dag: ResearchDag
    me: str
    ledger: Ledger
    directory: Path

    def problem_name(self, problem_id: str | None) -> str:
        """A problem's name for a line of ours (sanitised), or its short id if not held."""
        name = self.raw_name(problem_id)
        if name is None:
            return "?" if problem_id is None else f"{problem_id[:10]} (not held)"
        return cut(name, 40)

    def raw_name(self, problem_id: str | None) -> str | None:
        """A held problem's name as its author wrote it (for JSON), else None."""
        from research_dag import Problem

        problem = None if problem_id is None else self.dag.get(problem_id)
        return problem.name if isinstance(problem, Problem) else None

    def headers(self, record_ids: Iterable[str]) -> dict[str, Header]:
        found: dict[str, Header] = {}
        for record_id in record_ids:
            header = self.dag.header(record_id)
            if header is not None:
                found[record_id] = header
        return found

    def delta(self, header: Header) -> float | None:
        """Score minus the parent's score (both ok), or None."""
        parent = None if header.parent is None else self.dag.header(header.parent)
        if header.score is None or parent is None or parent.score is None:
            return None
        difference = header.score - parent.score
        return difference if math.isfinite(difference) else None

    def is_finding(self, header: Header) -> bool:
        """Ok, scored and strictly better than its held parent (ResearchDag.is_finding), from
        headers alone."""
        from research_dag import Problem

        problem = self.dag.get(header.problem) if header.problem else None
        parent = None if header.parent is None else self.dag.header(header.parent)
        if not isinstance(problem, Problem) or header.score is None:
            return False
        if parent is None or parent.problem != header.problem or parent.score is None:
            return False
        return problem.metric.better(header.score, parent.score)

    def trust(self, experiment: Experiment) -> str:
        """The swarm's verdict on a claim as this node's ledger sees it."""
        verdict, matches = self.ledger.verdict(experiment)
        return f"{verdict} ({matches} replays)" if verdict != "own" else "own"


@contextmanager
def open_view(data_dir: Path | None) -> Iterator[View]:
    """The data directory's DAG, headers only in memory; one red line if the store is damaged
    (also when a record shown later turns out damaged)."""
    from node.leaderboard import ledger_from
    from node.store import StoreError

    directory = _data_dir(data_dir)
    with _open_store(data_dir) as store:
        try:
            dag = store.load_dag(cache=VIEW_CACHE)
            me = _me(directory)
            yield View(dag, me, ledger_from(dag, me), directory)
        except StoreError as error:
            _fail(str(error))


def _me(directory: Path) -> str:
    """Our peer id if this data directory has an identity (a view never makes one), else the
    solo author "local"."""
    from node.identity import IDENTITY_FILE, IdentityError, load_or_create

    key = directory / IDENTITY_FILE
    if not (key.exists() or key.is_symlink()):
        return "local"
    try:
        return load_or_create(key).peer_id
    except IdentityError as error:
        _fail(str(error))


def cut(text: str, limit: int = LINE_TEXT) -> str:
    """A peer's text for one line of ours: at most `limit` characters of it, then every
    control, bidi and markup character made inert (`inline`)."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return inline(text)


def score_text(score: float | None) -> str:
    return "-" if score is None else f"{score:.6g}"


def delta_text(delta: float | None) -> str:
    return "" if delta is None else f"{delta:+.4g}"


def when(created_ms: int) -> str:
    """A record's time as its author gave it, UTC; a time no calendar holds as its number."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(created_ms / 1000))
    except (OverflowError, OSError, ValueError):
        return f"{created_ms} ms"


def pattern_status(pattern: Pattern) -> str:
    """candidate, live or retired; a record made before `status` existed is live unless
    retired (what `ResearchDag.patterns` assumed)."""
    if pattern.status is not None:
        return pattern.status
    return "retired" if pattern.retired else "live"


def pattern_scope(view: View, pattern: Pattern) -> list[str]:
    """The problems a pattern covers: its `problems`, else those of its supporting and
    contradicting experiments (records made before `problems` existed)."""
    if pattern.problems is not None:
        return list(pattern.problems)
    headers = view.headers([*pattern.supporting, *pattern.contradicting])
    return sorted({h.problem for h in headers.values() if h.problem is not None})



def depth(headers: list[Header]) -> int:
    """The longest lineage among these experiments (research_dag.lineage_depth, imported when
    asked: `swarm --help` stays fast)."""
    from research_dag import lineage_depth

    return lineage_depth(headers)


def hypothesis_state(verdicts: list[Verdict], open_here: bool = True) -> str:
    """The earliest verdict's result (derived verdicts of the same tests agree; differing ones
    come from different evidence, and the first decided it); without one, "open" if this
    node's derivation holds it open (`open_here`, node/knowledge.py `Shown.open`), else
    "withdrawn": its class retired, or the evidence this node counts no longer makes it, so
    no node of ours tests it (docs/playbook.md, "Hypotheses")."""
    if not verdicts:
        return "open" if open_here else "withdrawn"
    first = min(verdicts, key=lambda v: (v.created_ms, v.id))
    return str(first.result)


def domains_of(problems: Iterable[Problem]) -> list[str]:
    return sorted({domain for problem in problems for domain in problem.domains})


def one_line(record: Record) -> str:
    """A short, sanitised description of any record, for lists of matches."""
    from research_dag import Experiment, Problem, Transcript, Verdict, Verification

    if isinstance(record, Transcript):
        return f"{len(record.calls)} model calls"
    if isinstance(record, Problem):
        return cut(record.name, 60)
    if isinstance(record, Experiment):
        return f"{cut(record.mutation_kind, 40)} {score_text(record.outcome.score)}"
    if isinstance(record, Verification):
        return "match" if record.match else "mismatch"
    if isinstance(record, Verdict):
        return f"{record.result} by {len(record.tests)} tests"
    return cut(f"{record.mutation_kind}: {record.text}", 60)


def finite(document: Any) -> Any:
    """`document` with every non-finite float as None: JSON has no NaN or infinity."""
    if isinstance(document, float):
        return document if math.isfinite(document) else None
    if isinstance(document, dict):
        return {key: finite(value) for key, value in document.items()}
    if isinstance(document, (list, tuple)):
        return [finite(value) for value in document]
    return document
