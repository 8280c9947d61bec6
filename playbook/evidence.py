"""The evidence the curator derives from (every counted, described attempt in the DAG, in the
DAG's order, with its change classes and whether it improved on its parent) and the pattern
snapshots it derives."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from playbook.stats import Lift
from research_dag import Experiment, Header, Pattern, Problem, ResearchDag

# (created_ms, id): the one order every node agrees on (ResearchDag.records).
Key = tuple[int, str]
Files = tuple[tuple[str, str], ...]  # a candidate's (path, text) pairs, sorted


@dataclass(frozen=True, slots=True)
class Attempt:
    """One counted experiment that describes its change and has a parent to improve on."""

    key: Key
    problem: str
    author: str
    # Distinct change classes and cells (a class with a qualifier, "prune:weight_vector/
    # weakest"), sorted: the curator judges each cell like a class (docs/playbook.md).
    classes: tuple[str, ...]
    success: bool  # ok, scored and strictly better than its parent (ResearchDag.is_finding)
    hypothesis: str | None  # the hypothesis it tests, if any
    # (class or cell, site) of each change: where on its problem a class was tried already
    # (hypotheses_of plans only sites the target has not tried the class at).
    sites: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return self.key[1]

    @property
    def created_ms(self) -> int:
        return self.key[0]


@dataclass(frozen=True)
class Evidence:
    """Every attempt, in order, and the problems they belong to (by id)."""

    attempts: tuple[Attempt, ...]
    problems: dict[str, Problem] = field(default_factory=dict)
    # Problems with an experiment `counts` accepts (a baseline too): someone whose word counts
    # worked on them. Only these are hypotheses' targets: problem ids are free, and every
    # stranger's problem became a hypothesis (stored, shared, its sites analysed and kept).
    worked: frozenset[str] = frozenset()

    def by_problem(self) -> dict[str, list[Attempt]]:
        grouped: dict[str, list[Attempt]] = {pid: [] for pid in sorted(self.problems)}
        for attempt in self.attempts:
            grouped[attempt.problem].append(attempt)
        return grouped


def collect_evidence(dag: ResearchDag, counts: Callable[[Experiment], bool]) -> Evidence:
    """The attempts `derive` reads: experiments of held problems (those consistent with them),
    with a parent, with `changes`, that `counts` accepts (replayed by a peer, or the node's own).
    Everything else is ignored: old records without `changes`, baselines, unreplayed claims."""
    problems = {problem.id: problem for problem in dag.problems()}
    worked: set[str] = set()
    attempts = [attempt for problem in problems.values()
                for attempt in _attempts(dag, problem, counts, worked)]
    attempts.sort(key=lambda attempt: attempt.key)
    return Evidence(tuple(attempts), problems, frozenset(worked))


def _attempts(
    dag: ResearchDag, problem: Problem, counts: Callable[[Experiment], bool], worked: set[str]
) -> Iterator[Attempt]:
    """One candidate is one attempt, however many evaluated it: in a swarm's first round every
    node toggles the same switch of the same baseline, and eight copies made "toggle:switch/on
    improved 8 of 8" a live pattern from one change (then refuted on every problem it was
    carried to). Copies are the same strategy described as the same classes; the attempt sits
    where its first copy does in the DAG's order and succeeds when any counted copy did. So a
    backdated copy with a failing score (a failure needs only its author's standing, a success
    a replay) cannot hide a verified success, only move where it is walked."""
    headers = dag.experiment_headers(problem.id)
    by_id = {header.id: header for header in headers}
    loaded = {record.id: record for record in dag.get_many(h.id for h in headers)}
    made: dict[tuple[Files, tuple[str, ...]], Attempt] = {}  # in first-copy order
    for header in sorted(headers, key=lambda h: (h.created_ms, h.id)):
        experiment = loaded.get(header.id)
        if not isinstance(experiment, Experiment):
            continue
        if header.parent is None:  # a baseline: no change, but someone worked on the problem
            if problem.id not in worked and counts(experiment):
                worked.add(problem.id)
            continue
        if not experiment.changes or not counts(experiment):
            continue
        worked.add(problem.id)
        parent = by_id.get(header.parent) or dag.header(header.parent)
        sites = _sites(experiment)
        cells = tuple(sorted({klass for klass, _ in sites}))  # = change_cells(experiment)
        success = _improves(problem, header, parent)
        key = (_content(experiment), cells)
        first = made.get(key)
        if first is None:
            made[key] = Attempt((experiment.created_ms, experiment.id), problem.id,
                                experiment.author, cells, success, experiment.hypothesis_id,
                                sites)
        elif success and not first.success:
            made[key] = dataclasses.replace(first, success=True)
    yield from made.values()


def _sites(experiment: Experiment) -> tuple[tuple[str, str], ...]:
    pairs = set()
    for change in experiment.changes or ():
        pairs.add((change.change_class, change.site))
        if change.change_cell is not None:
            pairs.add((change.change_cell, change.site))
    return tuple(sorted(pairs))


def tried_sites(evidence: Evidence) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """(problem, class or cell) -> (created_ms, site) of each counted attempt there, in the
    DAG's order: where a problem tried a class, and since when."""
    tried: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for attempt in evidence.attempts:
        for klass, site in attempt.sites:
            tried.setdefault((attempt.problem, klass), []).append((attempt.created_ms, site))
    return tried


def _content(experiment: Experiment) -> Files:
    """The candidate's files, as a key (the same strategy evaluated twice is one): the texts
    themselves, hashed by Python once each, not copied."""
    return tuple(sorted(experiment.strategy.items()))


def change_cells(experiment: Experiment) -> tuple[str, ...]:
    """The distinct classes of an experiment's changes and the cells of those that carry a
    qualifier, sorted."""
    changes = experiment.changes or ()
    cells = {change.change_cell for change in changes if change.change_cell is not None}
    return tuple(sorted({change.change_class for change in changes} | cells))


def _improves(problem: Problem, header: Header, parent: Header | None) -> bool:
    """ResearchDag.is_finding from headers already read: ok, scored, strictly better than its
    ok, scored parent of the same problem."""
    if header.score is None or parent is None or parent.score is None:
        return False
    if parent.kind != "experiment" or parent.problem != problem.id:
        return False
    return problem.metric.better(header.score, parent.score)


def newest(attempts: Iterable[Attempt], limit: int) -> list[str]:
    """The ids of the newest `limit` of `attempts` (given in order), oldest first."""
    kept = list(attempts)[-limit:] if limit > 0 else []
    return [attempt.id for attempt in kept]


def split_cell(cell: str) -> tuple[str, str, str | None]:
    """"prune:weight_vector/weakest" -> ("prune", "weight_vector", "weakest"); a class has no
    qualifier (None)."""
    klass, _, qualifier = cell.partition("/")
    operation, _, affordance = klass.partition(":")
    return operation, affordance, qualifier or None


@dataclass(frozen=True)
class Snapshot:
    """One pattern snapshot of a class's chain, with what hypotheses are derived from: its
    counts and how many attempts of the class each problem had by then."""

    pattern: Pattern
    lift: Lift
    attempts_on: dict[str, int]
    # Per scope problem: (the class's successes, its attempts, other classes' successes, their
    # attempts) there; per problem with attempts: (successes, attempts) of every class. Both
    # as of the snapshot: what a hypothesis's consistency check and test plan read.
    by_problem: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)
