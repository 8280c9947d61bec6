"""What the dashboard knows of a data directory between requests: the store-backed DAG, our trust
ledger, and per problem its experiments in the order the dashboard first saw them (so `?after=N`
means "the N-th onwards"), refreshed from the store at most once per interval, in worker threads."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from node.leaderboard import PAGE
from node.store_schema import NOT_HELD
from node.trust import Ledger
from research_dag import (
    Experiment,
    Header,
    Problem,
    ResearchDag,
    Verification,
    fits,
    order,
)

if TYPE_CHECKING:
    from node.knowledge import Shown
    from node.store import RecordStore

VIEW_CACHE = 512  # whole records the dashboard's DAG keeps in memory; the store has the rest
REFRESH_S = 1.0  # the least time between two reads of the store's headers
# A record's time is its author's to choose: a point is drawn no earlier than this (2020) and
# no later than an hour from now, so one hostile clock does not squash every other point.
EARLIEST_MS = 1_577_836_800_000
Status = Literal["baseline", "keep", "discard", "failed", "unverified"]
STATUS_CODES: dict[Status, str] = {
    "baseline": "b", "keep": "k", "discard": "d", "failed": "f", "unverified": "u"}


@dataclass(frozen=True)
class DashboardSource:
    """Where the dashboard reads: a store (None until the node has one open), who "we" are (the
    ledger's owner), and, inside `swarm simulate`, the simulation's report so far. `external`:
    another process writes the store (`swarm dashboard` beside a running node)."""

    store: Callable[[], RecordStore | None]
    me: str = "local"
    simulation: Callable[[], dict[str, Any] | None] = field(default=lambda: None)
    external: bool = False
    refresh_s: float = REFRESH_S  # the least time between two reads of the store's headers


@dataclass
class Entry:
    """One experiment as the chart and the changelog show it."""

    header: Header
    t_ms: int  # created_ms, clamped to a drawable time
    status: Status = "discard"
    author: int = 0  # index into ProblemLog.authors (one colour per node)


@dataclass
class ProblemLog:
    problem: Problem
    entries: list[Entry] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)  # experiment id -> position
    authors: list[str] = field(default_factory=list)
    best: float | None = None  # the best score a trusted experiment reached, in arrival order
    best_id: str | None = None
    baseline: float | None = None


class DashboardState:
    """The dashboard's read model. Every method reads the store: call it from a worker thread.
    One lock: a refresh and a view never interleave."""

    def __init__(self, source: DashboardSource) -> None:
        self.source = source
        self.lock = threading.Lock()
        self.dag: ResearchDag | None = None
        self.ledger = Ledger(me=source.me)
        self.logs: dict[str, ProblemLog] = {}
        self.version = 0  # bumped whenever a refresh saw a change
        # The playbook as shown (graph.playbook): (version, when, seconds it took, what is
        # shown), derived again only as often as its cost allows.
        self.patterns: tuple[int, float, float, Shown] | None = None
        self.items: dict[str, dict[str, bool]] = {}  # checklist results read so far, by id
        self._store: RecordStore | None = None
        self._seen_votes: set[str] = set()
        self._key: tuple[int, int] | None = None
        self._checked = 0.0
        self._seq = 0  # the store's last row read
        self._held = 0  # records the store held then

    # ---- refreshing -----------------------------------------------------------------------

    def refresh(self, force: bool = False) -> bool:
        """Read what is new in the store, unless it was read less than REFRESH_S ago or has
        not changed. True when something changed. Caller holds `lock`."""
        now = time.monotonic()
        if not force and now - self._checked < self.source.refresh_s:
            return False
        self._checked = now
        store = self.source.store()
        if store is None:
            return False
        if store is not self._store:  # first read, or the node reopened its store
            self._store, self.dag, self._key = store, store.load_dag(cache=VIEW_CACHE), None
            self.ledger, self._seen_votes, self.logs = Ledger(me=self.source.me), set(), {}
        key = (store.count(), self._data_version(store))
        if key == self._key:
            return False
        self._key = key
        if self.source.external:
            with store.locked() as conn:  # names another process added since we opened it
                store.names.load(conn)
        rows, complete = self._rows_since(store)
        if complete and self.logs:
            self._take_rows(store, rows)
        else:  # the first read, or a record filled an older row (a parent after its child)
            self._take_problems(store)
            self._take_votes(store, None)
            for log in self.logs.values():
                self._take_experiments(log)
        self.version += 1
        return True

    def _rows_since(self, store: RecordStore) -> tuple[list[tuple[int, str, str]], bool]:
        """The records stored since the last read (row, id, kind), and whether they are all
        that changed: a record may also fill an older row (it was named before it arrived) or
        `swarm gc` may drop some; then the count does not add up and everything is read."""
        with store.locked() as conn:
            rows = [] if not self.logs else conn.execute(  # the first read reads everything
                f"SELECT seq, id, kind FROM records WHERE seq > ? AND kind != {NOT_HELD}"
                " ORDER BY seq", (self._seq,)).fetchall()
            held = int(conn.execute(
                f"SELECT count(*) FROM records WHERE kind != {NOT_HELD}").fetchone()[0])
            top = int(conn.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0])
        complete = self._held + len(rows) == held
        self._seq, self._held = top, held
        return [(int(seq), bytes(i).hex(), store.names.name(int(k))) for seq, i, k in rows
                ], complete

    def _take_rows(self, store: RecordStore, rows: list[tuple[int, str, str]]) -> None:
        """Only what the new rows hold: problems, votes (then every status is judged again)
        and experiments (judged from where their log ended)."""
        from node.store_index import StoreIndex

        dag = self.dag
        assert dag is not None
        kinds: dict[str, list[str]] = {}
        for _, record_id, kind in rows:
            kinds.setdefault(kind, []).append(record_id)
        for record in store.get_many(kinds.get("problem", [])):
            if isinstance(record, Problem):
                dag.add(record)
                self.logs.setdefault(record.id, ProblemLog(record))
        votes = kinds.get("verification", [])
        if votes:
            self._take_votes(store, votes)
        index = StoreIndex(store)
        headers = index.headers(kinds.get("experiment", []))
        parents = index.headers(h.parent for h in headers.values() if h.parent is not None)
        for log in self.logs.values():
            paths = frozenset(log.problem.mutable)
            fresh = [h for h in headers.values() if h.problem == log.problem.id
                     and h.id not in log.index and fits(h, parents.get(h.parent or ""), paths)]
            start = len(log.entries)
            self._append(log, sorted(fresh, key=order))
            self._judge(log, 0 if votes else start)

    def _data_version(self, store: RecordStore) -> int:
        """SQLite's count of commits by other connections: another process's writes."""
        if not self.source.external:
            return 0
        with store.locked() as conn:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def _take_problems(self, store: RecordStore) -> None:
        dag = self.dag
        assert dag is not None
        held = {p.id for p in dag.problems()}
        if self.source.external or not held:
            for record in store.iter_records(kind="problem"):
                if isinstance(record, Problem) and record.id not in held:
                    dag.add(record)
        for problem in dag.problems():
            self.logs.setdefault(problem.id, ProblemLog(problem))

    def _take_votes(self, store: RecordStore, ids: list[str] | None) -> None:
        """Note the verifications not seen yet, of `ids` (None: every one the store holds,
        by header in one query; then only new records are read)."""
        from node.store_index import StoreIndex

        dag = self.dag
        assert dag is not None
        if ids is None:
            ids = [h.id for h in StoreIndex(store).of_kind("verification")]
        fresh = [i for i in ids if i not in self._seen_votes]
        for start in range(0, len(fresh), PAGE):
            for record in dag.get_many(fresh[start : start + PAGE]):
                if isinstance(record, Verification):
                    self.ledger.note(record)
                    if record.author == self.ledger.me:
                        claimed = dag.get(record.experiment)
                        if isinstance(claimed, Experiment):
                            self.ledger.record_replay(claimed, record.match)
        self._seen_votes.update(fresh)

    def _take_experiments(self, log: ProblemLog) -> None:
        """New experiments join the end of the log (in created order among themselves); then
        every status is judged again, since a vote may have arrived for an old one."""
        dag = self.dag
        assert dag is not None
        self._append(log, [h for h in dag.experiment_headers(log.problem.id)
                           if h.id not in log.index])
        self._judge(log)

    def _append(self, log: ProblemLog, fresh: list[Header]) -> None:
        ceiling = int(time.time() * 1000) + 3_600_000
        authors = {name: i for i, name in enumerate(log.authors)}
        for header in fresh:
            if header.author not in authors:
                authors[header.author] = len(log.authors)
                log.authors.append(header.author)
            log.index[header.id] = len(log.entries)
            t_ms = min(max(header.created_ms, EARLIEST_MS), ceiling)
            log.entries.append(Entry(header, t_ms, author=authors[header.author]))

    def _judge(self, log: ProblemLog, start: int = 0) -> None:
        """Each entry's status from `start` on, in log order: kept when trusted and better than
        every trusted one before it (node/report.py's changelog, from headers)."""
        dag = self.dag
        assert dag is not None
        metric = log.problem.metric
        best = log.best if start else None
        if not start:
            log.best_id = None
            log.baseline = None
        for entry in log.entries[start:]:
            header = entry.header
            score = header.score if header.score is None or math.isfinite(header.score) else None
            verdict, _ = self.ledger.verdict_of(header, dag.get)
            if verdict not in ("own", "verified"):
                entry.status = "unverified"
            elif header.parent is None:
                entry.status = "baseline"
                if log.baseline is None and score is not None:
                    log.baseline = score
            elif score is None:
                entry.status = "failed"
            else:
                entry.status = "keep" if metric.better(score, best) else "discard"
            if entry.status in ("baseline", "keep") and score is not None and metric.better(
                    score, best):
                best, log.best_id = score, header.id
        log.best = best

    # ---- reading ----------------------------------------------------------------------------

    def log(self, problem_id: str) -> ProblemLog | None:
        return self.logs.get(problem_id)

    def require_dag(self) -> ResearchDag:
        if self.dag is None:
            raise LookupError("no store yet")
        return self.dag

