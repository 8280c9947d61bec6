"""Which records `swarm gc` may drop: old experiments nobody needs, and others' verifications of
them; never what a best lineage, a live pattern, a hypothesis, an open claim or this node's own
trust ledger rests on (docs/storage.md, "Retention")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from node.intake import MAX_AHEAD_MS
from node.leaderboard import ledger_from
from node.trust import Ledger
from research_dag import Experiment, Header, ResearchDag

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Retention:
    """Keep experiments younger than `keep_days` (by the time their author gave them), or each
    problem's newest `keep_last`; exactly one is set."""

    keep_days: float | None = None
    keep_last: int | None = None

    def __post_init__(self) -> None:
        if (self.keep_days is None) == (self.keep_last is None):
            raise ValueError("give exactly one of keep_days and keep_last")
        if (self.keep_days is not None and self.keep_days < 0) or (
            self.keep_last is not None and self.keep_last < 0
        ):
            raise ValueError("keep_days and keep_last cannot be negative")


@dataclass
class Plan:
    """What a retention policy drops, and why the rest of the old records stay."""

    drop: list[str] = field(default_factory=list)
    dropped_kinds: Counter[str] = field(default_factory=Counter)
    kept_because: Counter[str] = field(default_factory=Counter)  # old experiments kept, by why


def plan(dag: ResearchDag, me: str, retention: Retention, now_ms: int) -> Plan:
    """The records `retention` lets go from `dag`, for the node whose peer id is `me`.

    Only experiments and verifications ever go. An old experiment stays when it is on the
    lineage of a problem's best (verified, trusted or raw: the loop resumes from one of them), a
    baseline, cited by a live pattern, a test of a hypothesis, an open claim (a peer's finding
    nobody has judged yet), or one we replayed (our standings and adoptions rest on our replays
    and the experiments they judged). A verification stays while its experiment does, and ours
    always.
    """
    ledger = ledger_from(dag, me)
    protected: dict[str, str] = {}

    def protect(ids: list[str], why: str) -> None:
        for record_id in ids:
            protected.setdefault(record_id, why)

    old: list[Header] = []
    for problem in dag.problems():
        headers = dag.experiment_headers(problem.id)
        old += _old(headers, retention, now_ms)
        for verified in (ledger.verified, ledger.trusted, None):
            best = dag.best(problem.id, verified)
            if best is not None:
                protect([e.id for e in dag.lineage(best.id)], "best lineage")
    for pattern in dag.patterns():
        protect([*pattern.supporting, *pattern.contradicting], "cited by a live pattern")
    result = Plan()
    for header in sorted(old, key=lambda h: (h.created_ms, h.id)):
        why = protected.get(header.id) or _needed(dag, ledger, header)
        if why:
            result.kept_because[why] += 1
            continue
        result.drop.append(header.id)
        result.dropped_kinds["experiment"] += 1
        for verification in dag.verifications_of(header.id):
            if verification.author != me:
                result.drop.append(verification.id)
                result.dropped_kinds["verification"] += 1
    return result


def _old(headers: list[Header], retention: Retention, now_ms: int) -> list[Header]:
    """Headers (time-ordered) past `retention`. One dated beyond what intake takes today
    (`MAX_AHEAD_MS` past our clock; stored before that rule) counts as old: dated at the end
    of time, a flood was never expired by `--keep-days` and was every problem's newest for
    `--keep-last`, whose slots it took from our own attempts."""
    ahead = now_ms + MAX_AHEAD_MS
    future = [h for h in headers if h.created_ms > ahead]
    dated = [h for h in headers if h.created_ms <= ahead]
    if retention.keep_last is not None:
        return future + dated[: max(0, len(dated) - retention.keep_last)]
    assert retention.keep_days is not None
    cutoff = now_ms - int(retention.keep_days * DAY_MS)
    return future + [h for h in dated if h.created_ms < cutoff]


def _needed(dag: ResearchDag, ledger: Ledger, header: Header) -> str:
    if header.parent is None:
        return "baseline"
    experiment = dag.get(header.id)
    if not isinstance(experiment, Experiment):
        return "unreadable"
    if ledger.my_replays.get(header.id) is not None:
        return "we replayed it"  # our standings of its author rest on it
    if experiment.hypothesis_id is not None:
        return "tests a hypothesis"
    if dag.is_finding(experiment) and ledger.verdict(experiment)[0] == "pending":
        return "open claim"
    return ""

