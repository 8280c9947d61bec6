"""What a node knows (issue 11): the playbook curator run on the node's own DAG, the derived
records it makes that the DAG lacks (for the node to store and share), and the `Knowledge` each
research loop may use: only what this node derives itself, never a peer's record as it came."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from playbook import NOTHING_KNOWN, Derivation, Knowledge, derivation
from research_dag import Experiment, Hypothesis, Pattern, Record, ResearchDag, Verdict

CURATE_EVERY = 10  # rounds (a solo run: iterations) between derivations
# Ids of peers' derived records refused (not derived here) that sync does not fetch again: the
# newest this many (a 16-byte key each, ~1.3 MB at most). One evicted is fetched once more.
REMEMBERED_REFUSALS = 16_384
# Derived records a publisher may push unsolicited, not derived here, between two of our
# curations before each further envelope costs it gossip score: an honest peer publishes what
# it derived that is new to it, about what our own derivation holds (docs/security.md).
PUSH_ALLOWANCE = 256


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


def pattern_heads(patterns: Iterable[Pattern]) -> list[Pattern]:
    """The patterns no held pattern supersedes: the latest snapshot of each line."""
    held = list(patterns)
    superseded = {p.supersedes for p in held if p.supersedes is not None}
    return [p for p in held if p.id not in superseded]


class Shown(NamedTuple):
    """What a person is shown of this node's knowledge (`shown_patterns`)."""

    patterns: list[Pattern]
    here: set[str]  # ids of the shown patterns this node derives
    open: frozenset[str]  # ids of the hypotheses its derivation holds open


def shown_patterns(dag: ResearchDag, ledger: Judge, older: bool = False) -> Shown:
    """The patterns to show a person, and the ids of those this node derives: its current
    pattern of each class (derived now by the node's own evidence rule, stored or not yet),
    then the held heads of the classes it does not derive; `older`: also held heads of its own
    classes (older lines, peers' versions). A store grows several heads per class (snapshots
    derived from the evidence as it stood, peers' derivations): shown all, a 16-node
    simulation's playbook listed six live patterns for two classes. Also the hypotheses the
    same derivation holds open: a held one without a verdict that is not among them is
    withdrawn (`hypothesis_state`), not open."""
    derived = derivation(dag, evidence_rule(dag, ledger))
    mine = derived.heads()
    here = {pattern.id for pattern in mine}
    classes = {pattern.mutation_kind for pattern in mine}
    held = pattern_heads(p for p in dag.records("pattern") if isinstance(p, Pattern))
    return Shown([*mine, *(p for p in held if p.id not in here
                           and (older or p.mutation_kind not in classes))], here,
                 frozenset(h.id for h in derived.open_hypotheses()))


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
        self._sites: dict[str, dict[str, list[str]]] = {}  # each problem's, by class: analysed once

    @staticmethod
    def due(round_: int, every: int) -> bool:
        """Is round `round_` one to curate in, every `every` rounds (0: never)?"""
        return every > 0 and round_ % every == 0

    def curate(self) -> list[Record]:
        """Derive again from the DAG as it is now. Returns the derived records it does not
        hold yet, patterns first (each after those it cites), for the node to store and share
        like its own records."""
        return self.install(self.derive())

    def derive(self) -> Derivation:
        """The derivation from the DAG as it is now, without using it yet: a worker thread runs
        this on a swarm node (seconds for a large DAG or a large problem; docs/security.md).
        It only reads the DAG and the trust ledger, and fills the cache of problems' sites:
        one derivation at a time."""
        derived = derivation(self.dag, self.counts, self._sites)
        derived.derived_here("")  # its ids, collected here rather than on the event loop
        return derived

    def install(self, derived: Derivation) -> list[Record]:
        """Use `derived` from now on; the derived records the DAG does not hold yet."""
        self._derived = derived
        self._for.clear()
        self.curations += 1
        return [record for record in derived.records() if record.id not in self.dag]

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
        """Patterns by status, hypotheses by state (open, confirmed, refuted, withdrawn: no
        verdict and its class retired), as derived here: what a report shows."""
        result = {"candidate": 0, "live": 0, "retired": 0, "open": 0, "confirmed": 0,
                  "refuted": 0, "withdrawn": 0}
        if self._derived is None:
            return result
        for pattern in self._derived.heads():
            if pattern.status is not None:
                result[pattern.status] += 1
        for verdict in self._derived.verdicts:
            result[verdict.result] += 1
        result["open"] = len(self._derived.open_hypotheses())
        result["withdrawn"] = len(self._derived.hypotheses) - result["open"] - len(
            {verdict.hypothesis for verdict in self._derived.verdicts})
        return result


class DerivedGate:
    """Which peers' derived records (Pattern, Hypothesis, Verdict, whatever their author) a node
    takes in: only those its own latest derivation makes, which it would have made and stored
    itself. Anything else costs its sender nothing to forge (unsigned, 3 x 256 cited ids), so
    it is not stored (no disk, no DAG row, no cited id for sync to chase); its id is remembered
    (bounded) so that sync does not fetch it again. An honest peer's record that this node
    does not derive (yet: it curates every few rounds, and counts evidence by its own trust) is
    refused too and costs the honest peer nothing: each node derives, stores and shares its own.
    Unsolicited pushes beyond PUSH_ALLOWANCE per curation are charged (`over_allowance`)."""

    def __init__(self, knowledge: NodeKnowledge, remember: int = REMEMBERED_REFUSALS,
                 allowance: int = PUSH_ALLOWANCE) -> None:
        self.knowledge = knowledge
        self.remember = remember
        self.allowance = allowance
        self._refused: dict[bytes, None] = {}  # insertion order: the oldest is evicted first
        self._pushed: Counter[str] = Counter()  # by publisher, since our last curation
        self._curations = knowledge.curations

    def admits(self, record: Record) -> bool:
        """Take `record` in? Every kind but the derived ones, and those derived here."""
        if not isinstance(record, Pattern | Hypothesis | Verdict):
            return True
        if self.knowledge.derived_here(record.id):
            return True
        key = _key(record.id)
        self._refused.pop(key, None)
        self._refused[key] = None
        if len(self._refused) > self.remember:
            del self._refused[next(iter(self._refused))]
        return False

    def __contains__(self, record_id: object) -> bool:
        """Was a record of this id refused (recently)? Sync does not fetch it again; if this
        node's derivation makes it later, the node makes it itself."""
        return isinstance(record_id, str) and _key(record_id) in self._refused

    def over_allowance(self, publisher: str, refused: int) -> bool:
        """Count `refused` derived records `publisher` pushed unsolicited; True when it has now
        pushed more than its allowance since this node last curated."""
        if self.knowledge.curations != self._curations:
            self._curations = self.knowledge.curations
            self._pushed.clear()
        self._pushed[publisher] += refused
        return self._pushed[publisher] > self.allowance


def _key(record_id: str) -> bytes:
    try:
        return bytes.fromhex(record_id[:32])
    except ValueError:  # not an id: never one we refused
        return b""


def store_derived(knowledge: NodeKnowledge, store: RecordSink) -> int:
    """Derive, then store and index what is new (a solo `swarm run`, which shares nothing);
    how many records that is. A swarm node stores in a worker thread and shares them too
    (SwarmNode.curate)."""
    new = knowledge.curate()
    store.add_many(new)
    for record in new:
        knowledge.dag.add(record)
    return len(new)
