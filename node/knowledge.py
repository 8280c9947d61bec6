"""What a node knows (issue 11): the playbook curator run on the node's own DAG, the derived
records it makes that the DAG lacks (for the node to store and share), and the `Knowledge` each
research loop may use: only what this node derives itself, never a peer's record as it came."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from playbook import NOTHING_KNOWN, Derivation, Knowledge, derivation
from research_dag import Experiment, Pattern, Record, ResearchDag

CURATE_EVERY = 10  # rounds (a solo run: iterations) between derivations


class Judge(Protocol):
    """The trust ledger's two answers the evidence rule needs (node.trust.Ledger)."""

    def verified(self, experiment: Experiment) -> bool: ...

    def vouches(self, author: str) -> bool: ...


def evidence_rule(dag: ResearchDag, ledger: Judge) -> Callable[[Experiment], bool]:
    """Which experiments count as evidence: an improvement when it is verified (our own, or
    reproduced by our replay or by peers in good standing); any other attempt when its author
    vouches (we, or a peer some of whose claims our replays reproduced). Failed attempts are
    seldom replayed: counting only our own failures against every peer's verified improvement
    would inflate every class's success rate and its control's alike, and a new node would
    learn from no one's failures."""

    def counts(experiment: Experiment) -> bool:
        if dag.is_finding(experiment):
            return ledger.verified(experiment)
        return ledger.vouches(experiment.author)

    return counts


class RecordSink(Protocol):
    """Where derived records are kept (node.store.RecordStore)."""

    def add_many(self, records: list[Record]) -> object: ...


class NodeKnowledge:
    """The curator's latest derivation from `dag`, counting as evidence the experiments
    `counts` accepts (a node's own, and those replayed with a matching Verification: the trust
    ledger's `verified`). A peer's Pattern, Hypothesis or Verdict is data, never a prior: a loop
    gets only the live patterns and open hypotheses this node's own derivation makes, so a fake
    one (evidence that does not exist, or does not show it) changes nothing here."""

    def __init__(self, dag: ResearchDag, counts: Callable[[Experiment], bool]) -> None:
        self.dag = dag
        self.counts = counts
        self.curations = 0
        self._derived: Derivation | None = None
        self._for: dict[str, Knowledge] = {}

    @staticmethod
    def due(round_: int, every: int) -> bool:
        """Is round `round_` one to curate in, every `every` rounds (0: never)?"""
        return every > 0 and round_ % every == 0

    def curate(self) -> list[Record]:
        """Derive again from the DAG as it is now. Returns the derived records it does not
        hold yet, patterns first (each after those it cites), for the node to store and share
        like its own records."""
        self._derived = derivation(self.dag, self.counts)
        self._for.clear()
        self.curations += 1
        return [record for record in self._derived.records() if record.id not in self.dag]

    def derived_here(self, record_id: str) -> bool:
        """Does this node's own derivation make the record of that id? A peer's that it does not
        is shown as "not derived here" (docs/protocol.md, "Derived records")."""
        return self._derived is not None and self._derived.derived_here(record_id)

    def patterns(self) -> list[Pattern]:
        """The current pattern of each class this node derives (live, candidate or retired)."""
        return [] if self._derived is None else self._derived.heads()

    def for_problem(self, problem_id: str) -> Knowledge:
        """What a loop on `problem_id` may use: the live patterns this node derives (the
        largest lift first) and the open hypotheses it derives for that problem."""
        known = self._for.get(problem_id)
        if known is not None:
            return known
        if self._derived is None:
            return NOTHING_KNOWN
        live = sorted((p for p in self._derived.heads() if p.status == "live"),
                      key=lambda p: (-p.mean_delta, p.id))
        base_rates = {}
        for chain in self._derived.chains.values():
            lift = chain[-1].lift
            if lift.m:
                base_rates[chain[-1].pattern.id] = lift.c / lift.m
        hypotheses = tuple(h for h in self._derived.open_hypotheses() if h.problem == problem_id)
        known = Knowledge(tuple(live), hypotheses, base_rates)
        self._for[problem_id] = known
        return known

    def counts_of(self) -> dict[str, int]:
        """Patterns by status, hypotheses by state (open, confirmed, refuted), as derived here:
        what a report shows."""
        result = {"candidate": 0, "live": 0, "retired": 0, "open": 0, "confirmed": 0,
                  "refuted": 0}
        if self._derived is None:
            return result
        for pattern in self._derived.heads():
            if pattern.status is not None:
                result[pattern.status] += 1
        for verdict in self._derived.verdicts:
            result[verdict.result] += 1
        result["open"] = len(self._derived.open_hypotheses())
        return result


def store_derived(knowledge: NodeKnowledge, store: RecordSink) -> int:
    """Derive, then store and index what is new (a solo `swarm run`, which shares nothing);
    how many records that is. A swarm node stores in a worker thread and shares them too
    (SwarmNode.curate)."""
    new = knowledge.curate()
    store.add_many(new)
    for record in new:
        knowledge.dag.add(record)
    return len(new)
