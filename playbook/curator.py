"""The playbook curator: Pattern, Hypothesis and Verdict records derived, deterministically, from
the replayed evidence a DAG holds (docs/playbook.md explains the rules and their thresholds)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from playbook.evidence import (
    Attempt,
    Evidence,
    Snapshot,
    collect_evidence,
    split_cell,
    tried_sites,
)
from playbook.hypotheses import hypotheses_of, verdicts_of
from playbook.stats import Lift
from research_dag import (
    DERIVED_AUTHOR,
    MAX_LIST,
    Experiment,
    Hypothesis,
    Pattern,
    Problem,
    Record,
    ResearchDag,
    Verdict,
)


@dataclass(frozen=True)
class Lifecycle:
    """The thresholds of a pattern's lifecycle (docs/playbook.md, "Thresholds", measured by
    bench/measure_thresholds.py). Part of the record format in effect: nodes with other values
    derive other records."""

    first_snapshot: int = 4  # attempts of a class before its first pattern: fewer say nothing
    live_p: Fraction = Fraction(99, 100)  # candidate -> live: P(lift > 0) at least this ...
    live_attempts: int = 8  # ... after this many attempts, support from 2 problems or 2 authors
    keep_live_p: Fraction = Fraction(80, 100)  # live -> candidate below this (no flapping)
    retire_p: Fraction = Fraction(1, 100)  # -> retired: P(lift > 0) below this ...
    retire_attempts: int = 20  # ... after at least this many attempts
    revive_p: Fraction = Fraction(50, 100)  # retired -> candidate when evidence recovers to this

    @property
    def refuted_if(self) -> str:
        return (f"P(lift > 0) falls below {float(self.retire_p):g} after {self.retire_attempts}"
                " or more attempts")


LIFECYCLE = Lifecycle()
# A class is judged at each of its own attempts while that is cheap (P(lift > 0) a sum of at most
# this many terms); past that, at powers of two of its attempts and at the reviews below.
CHEAP_TERMS = 64
# Every class is judged again at these counts of attempts overall (powers of two up to REVIEW,
# then every REVIEW), so a class no longer tried still follows its control: cost O(N / REVIEW).
REVIEW = 256
MAX_SCOPE = 32  # Pattern.problems holds at most this many (those with the most attempts)
MAX_DOMAINS = 32
MAX_NAMED = 6  # problems named in a statement

STATUSES = ("candidate", "live", "retired")


@dataclass(frozen=True)
class Derivation:
    """Everything this node derives from its DAG: each class's chain of pattern snapshots (oldest
    first), the hypotheses of its live patterns and the verdicts on them. Held or not."""

    chains: dict[str, list[Snapshot]]
    hypotheses: list[Hypothesis]
    verdicts: list[Verdict]
    _ids: set[str] = field(default_factory=set)

    def records(self) -> list[Record]:
        """Patterns (class by class, oldest first), then hypotheses, then verdicts."""
        patterns: list[Record] = [s.pattern for k in sorted(self.chains) for s in self.chains[k]]
        return patterns + list(self.hypotheses) + list(self.verdicts)

    def heads(self) -> list[Pattern]:
        """The current pattern of each class (the newest snapshot of its chain), by class."""
        return [self.chains[k][-1].pattern for k in sorted(self.chains) if self.chains[k]]

    def derived_here(self, record_id: str) -> bool:
        """Whether this node's own derivation makes the record of that id (a peer's derived
        record that is not is shown as "not derived here", never used)."""
        if not self._ids:
            self._ids.update(record.id for record in self.records())
        return record_id in self._ids

    def open_hypotheses(self) -> list[Hypothesis]:
        """Hypotheses without a verdict, unless their class's current snapshot is retired. A
        hypothesis is a prediction with its plan, written before testing: it stays open until
        its tests decide it, whatever its pattern's evidence does meanwhile. That evidence takes
        in the tests themselves and those of its siblings on other targets, so closing a
        hypothesis when its pattern fell from live, or when one of its sources stopped showing
        the lift, closed it on its own tests' results, undecided: in five 16-node simulations,
        ten hypotheses stopped so, against four decided (bench/RESULTS.md, "Issue 11:
        hypotheses stay open until decided"). A retired class is contradicted by its own
        evidence (docs/playbook.md, the lifecycle): its hypotheses are withdrawn, not tested."""
        decided = {verdict.hypothesis for verdict in self.verdicts}
        retired = {klass for klass, chain in self.chains.items()
                   if chain and chain[-1].pattern.status == "retired"}
        return [h for h in self.hypotheses
                if h.id not in decided and h.mutation_kind not in retired]


def derive(dag: ResearchDag, counts: Callable[[Experiment], bool]) -> list[Record]:
    """The derived records (Pattern, Hypothesis, Verdict) this node's evidence gives that `dag`
    does not hold yet. Pure: the same counted evidence gives the same records, byte for byte."""
    return [record for record in derivation(dag, counts).records() if record.id not in dag]


def patterns_derived_here(dag: ResearchDag, counts: Callable[[Experiment], bool]) -> list[Pattern]:
    """The current live, candidate and retired pattern of each class this node derives: the only
    patterns it may use (live ones) as priors."""
    return derivation(dag, counts).heads()


def derivation(dag: ResearchDag, counts: Callable[[Experiment], bool],
               sites_of: dict[str, dict[str, list[str]]] | None = None) -> Derivation:
    """`sites_of`: the caller's cache of each problem's sites (hypotheses_of)."""
    evidence = collect_evidence(dag, counts)
    chains = pattern_chains(evidence)
    targets = {pid: p for pid, p in evidence.problems.items() if pid in evidence.worked}
    hypotheses = hypotheses_of(chains, targets, sites_of=sites_of, tried=tried_sites(evidence))
    return Derivation(chains, hypotheses, verdicts_of(hypotheses, evidence))


def pattern_chains(evidence: Evidence, rules: Lifecycle = LIFECYCLE
                   ) -> dict[str, list[Snapshot]]:
    """Each class's snapshots, walking the attempts in order once: a snapshot wherever the
    status changes or the class's attempts reach a power of two (from FIRST_SNAPSHOT on), each
    superseding the one before. A function of the evidence alone, not of when a node looked."""
    walk = _Walk(evidence.problems, rules)
    for count, attempt in enumerate(evidence.attempts, start=1):
        walk.step(attempt)
        if count % REVIEW == 0 or (count < REVIEW and count & (count - 1) == 0):
            walk.review()
    return {klass: state.chain for klass, state in sorted(walk.classes.items()) if state.chain}


def next_status(previous: str | None, lift: Lift, broad: bool,
                rules: Lifecycle = LIFECYCLE) -> str:
    """The lifecycle rule (docs/playbook.md): `broad` is support from 2 problems or 2 authors."""
    if lift.n >= rules.retire_attempts and lift.below(rules.retire_p):
        return "retired"
    if previous == "retired" and lift.below(rules.revive_p):
        return "retired"
    if previous == "live" and not lift.below(rules.keep_live_p):
        return "live"
    if lift.n >= rules.live_attempts and broad and lift.at_least(rules.live_p):
        return "live"
    return "candidate"


@dataclass
class _Class:
    """A class's running state during the walk."""

    klass: str
    successes: list[Attempt] = field(default_factory=list)
    failures: list[Attempt] = field(default_factory=list)
    scope: dict[str, int] = field(default_factory=dict)  # problem -> the class's attempts on it
    support_problems: set[str] = field(default_factory=set)
    support_authors: set[str] = field(default_factory=set)
    status: str | None = None
    chain: list[Snapshot] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.successes) + len(self.failures)


class _Walk:
    """Running totals per problem and per (problem, class), so each step costs O(scope)."""

    def __init__(self, problems: Mapping[str, Problem], rules: Lifecycle) -> None:
        self.problems = problems
        self.rules = rules
        self.classes: dict[str, _Class] = {}
        self.on_problem: dict[str, list[Attempt]] = {pid: [] for pid in problems}
        self.successes_on: dict[str, int] = dict.fromkeys(problems, 0)
        self.class_attempts: dict[tuple[str, str], int] = {}
        self.class_successes: dict[tuple[str, str], int] = {}

    def step(self, attempt: Attempt) -> None:
        problem = attempt.problem
        self.on_problem[problem].append(attempt)
        self.successes_on[problem] += attempt.success
        for klass in attempt.classes:
            pair = (problem, klass)
            self.class_attempts[pair] = self.class_attempts.get(pair, 0) + 1
            self.class_successes[pair] = self.class_successes.get(pair, 0) + attempt.success
            state = self.classes.setdefault(klass, _Class(klass))
            (state.successes if attempt.success else state.failures).append(attempt)
            state.scope[problem] = state.scope.get(problem, 0) + 1
            if attempt.success:
                state.support_problems.add(problem)
                state.support_authors.add(attempt.author)
            if state.attempts >= self.rules.first_snapshot:
                n = state.attempts
                self._judge(state, grown=n & (n - 1) == 0, always=False)

    def review(self) -> None:
        """Judge every class again (its control has grown since its own last attempt)."""
        for klass in sorted(self.classes):
            state = self.classes[klass]
            if state.attempts >= self.rules.first_snapshot:
                self._judge(state, grown=False, always=True)

    def _judge(self, state: _Class, grown: bool, always: bool) -> None:
        """A new snapshot when the status changes or the evidence has `grown` (a power of 2).
        Unless `always` or `grown`, only when judging is cheap (CHEAP_TERMS)."""
        lift = self._lift(state)
        if not (always or grown) and lift.cost > CHEAP_TERMS:
            return
        broad = len(state.support_problems) >= 2 or len(state.support_authors) >= 2
        status = next_status(state.status, lift, broad, self.rules)
        if status != state.status or grown:
            state.chain.append(self._snapshot(state, lift, status))
        state.status = status

    def _lift(self, state: _Class) -> Lift:
        control = control_successes = 0
        for problem in state.scope:
            pair = (problem, state.klass)
            control += len(self.on_problem[problem]) - self.class_attempts[pair]
            control_successes += self.successes_on[problem] - self.class_successes[pair]
        return Lift(len(state.successes), state.attempts, control_successes, control)

    def _snapshot(self, state: _Class, lift: Lift, status: str) -> Snapshot:
        scope = sorted(sorted(state.scope, key=lambda p: (-state.scope[p], p))[:MAX_SCOPE])
        control = self._control(state.klass, scope)
        supporting = state.successes[-MAX_LIST:]
        contradicting = state.failures[-MAX_LIST:]
        cited = [a.created_ms for group in (supporting, contradicting, control) for a in group[-1:]]
        previous = state.chain[-1].pattern if state.chain else None
        operation, affordance, qualifier = split_cell(state.klass)
        values: dict[str, Any] = {
            "author": DERIVED_AUTHOR,
            "created_ms": max(cited + ([] if previous is None else [previous.created_ms])),
            "mutation_kind": state.klass,
            "operation": operation,
            "affordance": affordance,
            "text": self._statement(state, lift),
            "supporting": [a.id for a in supporting],
            "contradicting": [a.id for a in contradicting],
            "success_rate": lift.s / lift.n,
            "mean_delta": lift.estimate(),
            "domains": self._domains(scope),
            "retired": status == "retired",
            "problems": scope,
            "control": [a.id for a in control],
            "status": status,
            "supersedes": None if previous is None else previous.id,
            "refuted_if": self.rules.refuted_if,
        }
        if qualifier is not None:
            values["qualifier"] = qualifier
        pattern = Pattern.model_validate(values)
        by_problem = {}
        for problem in state.scope:
            s = self.class_successes[(problem, state.klass)]
            n = self.class_attempts[(problem, state.klass)]
            by_problem[problem] = (s, n, self.successes_on[problem] - s,
                                   len(self.on_problem[problem]) - n)
        totals = {problem: (self.successes_on[problem], len(attempts))
                  for problem, attempts in self.on_problem.items() if attempts}
        return Snapshot(pattern, lift, dict(state.scope), by_problem, totals)

    def _control(self, klass: str, scope: Iterable[str]) -> list[Attempt]:
        """The newest MAX_LIST attempts of other classes on the scope problems, so far."""
        kept: list[Attempt] = []
        for problem in scope:
            mine: list[Attempt] = []
            for attempt in reversed(self.on_problem[problem]):
                if klass not in attempt.classes:
                    mine.append(attempt)
                    if len(mine) == MAX_LIST:
                        break
            kept.extend(mine)
        kept.sort(key=lambda attempt: attempt.key)
        return kept[-MAX_LIST:]

    def _domains(self, scope: Iterable[str]) -> list[str]:
        domains = {domain for problem in scope for domain in self.problems[problem].domains}
        return sorted(domains)[:MAX_DOMAINS]

    def _statement(self, state: _Class, lift: Lift) -> str:
        ranked = sorted(state.scope, key=lambda p: (-state.scope[p], self.problems[p].name, p))
        names = ", ".join(self.problems[p].name for p in ranked[:MAX_NAMED])
        if len(ranked) > MAX_NAMED:
            names += f" and {len(ranked) - MAX_NAMED} more"
        return (f"{state.klass} improved {lift.s} of {lift.n} attempts on {names} against a base"
                f" rate of {lift.c} of {lift.m} (P(lift > 0) = {lift.shown()},"
                f" lift {lift.estimate():+.3f})")
