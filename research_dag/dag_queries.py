"""The questions nodes ask of the Research DAG: a problem's experiments, its best, findings,
frontier and lineages, and the verifications, hypotheses and patterns linked to them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from research_dag.codec import Record
from research_dag.derived import Hypothesis, Pattern
from research_dag.edges import Relation, header_of
from research_dag.index import Header, HeaderIndex
from research_dag.record_base import RecordBase
from research_dag.records import Experiment, Metric, Problem, Verification

_R = TypeVar("_R", bound=RecordBase)


class DagQueries:
    """The querying half of `ResearchDag` (research_dag/dag.py), which sets the attributes below."""

    _index: HeaderIndex
    _problems: dict[str, Problem]

    if TYPE_CHECKING:  # research_dag/dag.py

        def get(self, record_id: str) -> Record | None: ...

        def get_many(self, record_ids: Iterable[str]) -> list[Record]: ...

        def header(self, record_id: str) -> Header | None: ...

    def problems(self) -> list[Problem]:
        return sorted(self._problems.values(), key=_order)

    def experiment_headers(self, problem_id: str) -> list[Header]:
        """The headers of `experiments(problem_id)`, in the same order, without loading any."""
        return [h for h, _ in self._experiment_pairs(problem_id)]

    def _experiment_pairs(self, problem_id: str) -> list[tuple[Header, Header | None]]:
        problem = self._problems.get(problem_id)
        return self._index.experiments(
            problem_id, None if problem is None else frozenset(problem.mutable))

    def experiments(self, problem_id: str) -> list[Experiment]:
        """The problem's experiments; once the problem is held, only those consistent with it.

        A record that names one not held yet is taken in unchecked (the DAG is order-free), so
        a claim naming files the problem does not declare, or a parent of another problem, can
        precede its problem: it stays stored but is never counted, ranked or shown as a best.
        """
        return self._whole_of(Experiment, self.experiment_headers(problem_id))

    def authors(self, problem_id: str) -> set[str]:
        """Who has experiments on a problem (without loading them)."""
        return {h.author for h in self.experiment_headers(problem_id)}

    def best(
        self, problem_id: str, verified: Callable[[Experiment], bool] | None = None
    ) -> Experiment | None:
        """The ok, scored experiment with the best score among those `verified` accepts; ties go
        to the earliest, then least id.

        A DAG holds peers' claims as they made them, forged ones included: anything that shows
        a best to a person passes the trust ledger's `verified` (node/trust.py). Only a solo
        store, where every record is the node's own, may leave it out.
        """
        problem = self._problems.get(problem_id)
        if problem is None:
            return None
        best: Experiment | None = None
        for header in self.experiment_headers(problem_id):
            score = header.score
            if score is None or not problem.metric.better(score, _score_of(best)):
                continue
            experiment = self.get(header.id)
            if isinstance(experiment, Experiment) and (verified is None or verified(experiment)):
                best = experiment
        return best

    def lineage(self, experiment_id: str) -> list[Experiment]:
        """The chain of experiments from the oldest known ancestor (first) to this one (last)."""
        chain: list[Experiment] = []
        current = self.get(experiment_id)
        seen: set[str] = set()
        while isinstance(current, Experiment) and current.id not in seen:
            seen.add(current.id)
            chain.append(current)
            current = self.get(current.parent) if current.parent else None
        chain.reverse()
        return chain

    def linked_ids(self, record_id: str, rel: Relation | None = None) -> list[str]:
        """The ids this record's outgoing edges lead to (of one relation, if given), whether or
        not their records are held."""
        return [target for _, target, _ in self._index.linked([record_id], rel)]

    def children(self, record_id: str, rel: Relation | None = None) -> list[Record]:
        """Present records this record's outgoing edges lead to (of one relation, if given)."""
        held = self._index.headers(self.linked_ids(record_id, rel))
        return self.get_many(h.id for h in sorted(held.values(), key=_order))

    def is_finding(self, experiment: Experiment) -> bool:
        """Ok and strictly better than its known, ok, scored parent, in the problem's direction."""
        header = self.header(experiment.id) or header_of(experiment)
        parent = None if header.parent is None else self.header(header.parent)
        return self._is_finding(header, parent)

    def _is_finding(self, header: Header, parent: Header | None) -> bool:
        metric = self._metric(header.problem)
        if metric is None or header.score is None or parent is None:
            return False
        if parent.kind != "experiment" or parent.problem != header.problem:
            return False
        return parent.score is not None and metric.better(header.score, parent.score)

    def findings(self, problem_id: str | None = None) -> list[Experiment]:
        if problem_id is None:
            pairs = [pair for p in self._problems for pair in self._index.experiments(p, None)]
            pairs.sort(key=lambda pair: _order(pair[0]))
        else:
            pairs = self._experiment_pairs(problem_id)
        return self._whole_of(Experiment, [h for h, parent in pairs
                                           if self._is_finding(h, parent)])

    def findings_by_kind(self, problem_id: str | None = None) -> dict[str, list[Experiment]]:
        """Findings grouped by mutation kind; kinds in sorted order, findings in time order."""
        grouped: dict[str, list[Experiment]] = {}
        for finding in self.findings(problem_id):
            grouped.setdefault(finding.mutation_kind, []).append(finding)
        return {kind: grouped[kind] for kind in sorted(grouped)}

    def verifications_of(self, experiment_id: str) -> list[Verification]:
        return self._linked_of(Verification, self.linked_ids(experiment_id, "verified_by"))

    def hypotheses_for(self, problem_id: str) -> list[Hypothesis]:
        return self._linked_of(Hypothesis, self._index.linking(problem_id, "targets"))

    def hypothesis_ids_for(self, problem_id: str) -> list[str]:
        """The ids of `hypotheses_for(problem_id)`, without loading them."""
        return list(self._index.headers(self._index.linking(problem_id, "targets")))

    def tested_by(self, hypothesis_id: str) -> list[Experiment]:
        """Experiments that tested a hypothesis (their outcomes confirm or refute it)."""
        return self._linked_of(Experiment, self.linked_ids(hypothesis_id, "tested_by"))

    def frontier(self, problem_id: str) -> list[Experiment]:
        """Ok, scored experiments that no ok child has beaten yet: where search can go on."""
        metric = self._metric(problem_id)
        if metric is None:
            return []
        scored = [h for h in self.experiment_headers(problem_id) if h.score is not None]
        edges = self._index.linked((h.id for h in scored), "has_child")
        children = self._index.headers(target for _, target, _ in edges)
        beaten: set[str] = set()
        by_id = {h.id: h for h in scored}
        for source, target, _ in edges:
            child, parent = children.get(target), by_id[source]
            if (child is not None and child.kind == "experiment" and child.score is not None
                    and parent.score is not None and metric.better(child.score, parent.score)):
                beaten.add(source)
        return self._whole_of(Experiment, [h for h in scored if h.id not in beaten])

    def patterns(self, include_retired: bool = False) -> list[Pattern]:
        return [
            p for p in self._whole_of(Pattern, self._index.of_kind("pattern"))
            if include_retired or not p.retired
        ]

    def _whole_of(self, cls: type[_R], headers: Iterable[Header]) -> list[_R]:
        """The records of `headers` (in that order) that are `cls`; those not in memory are
        read in one pass (a startup reading every verification made one query each)."""
        return [r for r in self.get_many(h.id for h in headers) if isinstance(r, cls)]

    def _linked_of(self, cls: type[_R], ids: Iterable[str]) -> list[_R]:
        held = self._index.headers(ids)
        return self._whole_of(cls, sorted(held.values(), key=_order))

    def _metric(self, problem_id: str | None) -> Metric | None:
        problem = None if problem_id is None else self._problems.get(problem_id)
        return None if problem is None else problem.metric


def _order(record: RecordBase | Header) -> tuple[int, str]:
    return record.created_ms, record.id


def _score_of(experiment: Experiment | None) -> float | None:
    return None if experiment is None else experiment.outcome.score
