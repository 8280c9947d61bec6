"""Cross-problem hypotheses from live patterns, the verdicts their tests reach, and the
confirmation rates that measure whether the swarm's lessons transfer (docs/playbook.md)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from playbook.affordances import strategy_affordances
from playbook.evidence import Attempt, Evidence, Snapshot, newest
from playbook.power import PLAN, Prediction, TestPlan, predict
from playbook.stats import Lift, rate_interval
from research_dag import (
    DERIVED_AUTHOR,
    MAX_LIST,
    MAX_NAME,
    Hypothesis,
    Pattern,
    Problem,
    ResearchDag,
    Verdict,
)

MAX_SHOWN_SITES = 3  # sites (and source problems) named in a hypothesis's text: bounded


def hypotheses_of(
    chains: Mapping[str, Sequence[Snapshot]], problems: Mapping[str, Problem],
    plan: TestPlan = PLAN, sites_of: dict[str, dict[str, list[str]]] | None = None,
    tried: Mapping[tuple[str, str], Sequence[tuple[int, str]]] | None = None,
) -> list[Hypothesis]:
    """For each class and each problem whose baseline strategy has that affordance (with a site
    that takes the operation) where the class is not shown yet: one hypothesis, from the first
    live snapshot of the chain that finds the problem so and makes a prediction there (its
    sources agree and a plan of at most `max_tries` tests can decide it: playbook/power.py).
    One per (class, problem) for good, so a pattern's later snapshots do not repeat it.

    `sites_of`: each problem's sites by class, kept by the caller across derivations (a problem
    is immutable: its id names its files). A problem's baseline is analysed only once a class
    has a live snapshot, and at most once per cache: a 256 KB strategy takes seconds.

    `tried` (evidence.tried_sites): the sites where the target tried the class by the time of
    the snapshot are left out of the plan, and a class it tried at every site gets no
    hypothesis: a transfer brings nothing the target has not seen. (A 16-node swarm made
    fifteen "toggle:switch/on" hypotheses whose switches every target had screened in its
    first rounds; none could be tested in 120 rounds: each stayed open.)"""
    affordances = {} if sites_of is None else sites_of
    found: list[Hypothesis] = []
    for klass in sorted(chains):
        if not any(snapshot.pattern.status == "live" for snapshot in chains[klass]):
            continue
        for pid in sorted(problems):
            if pid not in affordances:
                affordances[pid] = _sites_by_class(problems[pid])
            sites = affordances[pid].get(klass)
            if not sites:
                continue
            there = () if tried is None else tried.get((pid, klass), ())
            for snapshot in chains[klass]:
                if (snapshot.pattern.status != "live"
                        or snapshot.attempts_on.get(pid, 0) >= plan.shown_attempts):
                    continue
                until = snapshot.pattern.created_ms
                done = {site for when, site in there if when <= until}
                untried = [site for site in sites if site not in done]
                if not untried:
                    continue
                prediction = predict(snapshot, pid, plan)
                if prediction is not None:
                    found.append(_hypothesis(snapshot, problems, problems[pid], untried,
                                             prediction, plan))
                    break
    return found


def _sites_by_class(problem: Problem) -> dict[str, list[str]]:
    """The target's sites per change class and per cell (a class with a qualifier: a switch
    that is off can be turned on), from its baseline strategy (the posed files)."""
    files = {path: problem.files[path].decode("utf-8") for path in problem.mutable}
    by_class: dict[str, list[str]] = {}
    for site in strategy_affordances(files):
        if len(site.site) > MAX_NAME:
            continue
        for klass in (*site.change_classes, *site.cells):
            sites = by_class.setdefault(klass, [])
            if site.site not in sites and len(sites) < MAX_LIST:
                sites.append(site.site)
    return by_class


def _hypothesis(snapshot: Snapshot, problems: Mapping[str, Problem], target: Problem,
                sites: list[str], prediction: Prediction, plan: TestPlan) -> Hypothesis:
    pattern, lift = snapshot.pattern, snapshot.lift
    names = [problems[p].name for p in (pattern.problems or ()) if p in problems]
    source = ", ".join(names[:MAX_SHOWN_SITES])
    if len(names) > MAX_SHOWN_SITES:
        source += f" and {len(names) - MAX_SHOWN_SITES} more"
    shown = ", ".join(sites[:MAX_SHOWN_SITES])
    if len(sites) > MAX_SHOWN_SITES:
        shown += f" and {len(sites) - MAX_SHOWN_SITES} more"
    text = (f"{pattern.mutation_kind} improved {lift.s} of {lift.n} attempts on {source} against"
            f" a base rate of {lift.c} of {lift.m} (P(lift > 0) = {lift.shown()})"
            f"; lift on each of its {prediction.sources} source problem(s), the smallest"
            f" {float(prediction.ratio):.2f}x; predicted to improve {target.name} from its base"
            f" rate {float(prediction.base):.3f} to {float(prediction.rate):.3f} at {shown};"
            f" decided by {prediction.tries} tests (power {float(prediction.power):.2f} to"
            f" confirm at P >= {float(plan.confirm_p):g}; up to {plan.last(prediction.tries)}"
            f" if inconclusive)")
    values: dict[str, Any] = {
        "author": DERIVED_AUTHOR,
        "created_ms": max(pattern.created_ms, target.created_ms),
        "pattern": pattern.id,
        "problem": target.id,
        "mutation_kind": pattern.mutation_kind,
        "operation": pattern.operation,
        "affordance": pattern.affordance,
        "text": text,
        "sites": sites,
        "expected_lift": prediction.expected_lift,
        "tries": prediction.tries,
    }
    if pattern.qualifier is not None:
        values["qualifier"] = pattern.qualifier
    return Hypothesis.model_validate(values)


def verdicts_of(hypotheses: Iterable[Hypothesis], evidence: Evidence, plan: TestPlan = PLAN
                ) -> list[Verdict]:
    """A verdict for each hypothesis whose tests decided it: counted attempts of its class on
    its problem that test a hypothesis, judged one by one, in order, against the attempts of
    other classes on that problem up to then (the target's base rate).

    A test may name another node's id for the same hypothesis: there is one per (class,
    problem), but its id cites the source pattern's snapshot, which differs between nodes whose
    counted evidence differs (as it does in any running swarm). Counting only tests that name
    this node's own id split a hypothesis's tests between a dozen ids, none decided (16 nodes,
    bench/bench_knowledge.py sim: 20 tests, no verdict)."""
    tests: dict[tuple[str, str], list[Attempt]] = {}
    for attempt in evidence.attempts:
        if attempt.hypothesis is not None:
            for klass in attempt.classes:
                tests.setdefault((attempt.problem, klass), []).append(attempt)
    on_problem = evidence.by_problem()
    verdicts = []
    for hypothesis in hypotheses:
        mine = tests.get((hypothesis.problem, hypothesis.mutation_kind or ""), [])
        if mine:
            control = [a for a in on_problem.get(hypothesis.problem, ())
                       if hypothesis.mutation_kind not in a.classes]
            verdict = _verdict(hypothesis, _authors_in_turn(mine), control, plan)
            if verdict is not None:
                verdicts.append(verdict)
    return verdicts


def decide(lift: Lift, tries: int, plan: TestPlan = PLAN) -> str | None:
    """The verdict rule: "confirmed", "refuted" or None (not decided yet). At `tries` tests:
    confirmed at P >= confirm_p, refuted below continue_p, else the plan goes on to
    `plan.last(tries)` tests and is decided there at extended_confirm_p; before and between
    those looks, from `early_tests` on, the early thresholds decide."""
    last = plan.last(tries)
    if lift.n >= last:
        bar = plan.extended_confirm_p if last > tries else plan.confirm_p
        return "confirmed" if lift.at_least(bar) else "refuted"
    if lift.n == tries:
        if lift.at_least(plan.confirm_p):
            return "confirmed"
        if not lift.at_least(plan.continue_p):
            return "refuted"
        return None
    if lift.n < plan.early_tests:
        return None
    if lift.at_least(plan.early_confirm_p):
        return "confirmed"
    if lift.at_most(plan.refute_p):
        return "refuted"
    return None


def _authors_in_turn(tests: list[Attempt]) -> list[Attempt]:
    """Tests in the order a verdict reads them: each author's in the DAG's order, authors
    taking turns (first tests of each, by when each began, then second tests, ...). In time
    order alone, one peer in good standing dating its tests just after the hypothesis, ahead
    of every honest test, decided it by itself (a red team: "refuted: 0 of 5" where 6 of 8
    honest tests improved); now each prefix holds at most one test more of an author than of
    any other who has tests. One tester's order is unchanged."""
    by_author: dict[str, list[Attempt]] = {}
    for test in tests:
        by_author.setdefault(test.author, []).append(test)
    queues = list(by_author.values())  # by each author's first test, as `tests` is ordered
    turns: list[Attempt] = []
    for depth in range(max((len(queue) for queue in queues), default=0)):
        turns += [queue[depth] for queue in queues if depth < len(queue)]
    return turns


def _verdict(hypothesis: Hypothesis, tests: list[Attempt], control: list[Attempt],
             plan: TestPlan) -> Verdict | None:
    keys = [attempt.key for attempt in control]
    successes = [0]
    for attempt in control:
        successes.append(successes[-1] + attempt.success)
    tries = hypothesis.tries or plan.tries
    won = 0
    for done, test in enumerate(tests, start=1):
        won += test.success
        seen = bisect.bisect_right(keys, test.key)
        lift = Lift(won, done, successes[seen], seen)
        result = decide(lift, tries, plan)
        if result is None:
            continue
        cited = newest(control[:seen], MAX_LIST)
        created = max([hypothesis.created_ms, test.created_ms]
                      + [a.created_ms for a in control[max(0, seen - MAX_LIST):seen]])
        values: dict[str, Any] = {
            "author": DERIVED_AUTHOR,
            "created_ms": created,
            "hypothesis": hypothesis.id,
            "result": result,
            "tests": [attempt.id for attempt in tests[:done]],
            "control": cited,
            "text": _verdict_text(result, lift, plan),
        }
        return Verdict.model_validate(values)
    return None


def _verdict_text(result: str, lift: Lift, plan: TestPlan) -> str:
    text = (f"{result}: {lift.s} of {lift.n} tests improved, against a base rate of {lift.c} of"
            f" {lift.m} (P(lift > 0) = {lift.shown()})")
    if result == "refuted":
        text += "; negative transfer" if lift.at_most(plan.refute_p) else "; no lift shown"
    return text


@dataclass(frozen=True)
class ConfirmationRate:
    """Confirmed of decided hypotheses for one key, with a 95 % credible interval."""

    key: str
    confirmed: int
    decided: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.confirmed / self.decided if self.decided else 0.0


@dataclass(frozen=True)
class ConfirmationRates:
    by_pattern: list[ConfirmationRate]  # key: the pattern's class ("prune:weight_vector")
    by_domains: list[ConfirmationRate]  # key: "finance -> search" (first domain of each)


def confirmation_rates(dag: ResearchDag, verdicts: Iterable[Verdict] | None = None
                       ) -> ConfirmationRates:
    """Per pattern class and per (source domain -> target domain) pair: how many decided
    hypotheses were confirmed. `verdicts`: those to count (a node passes the ones it derives
    itself); all the DAG holds if None. A problem's domain is its first (else its name)."""
    held = dag.records("verdict") if verdicts is None else list(verdicts)
    by_pattern: dict[str, list[bool]] = {}
    by_domains: dict[str, list[bool]] = {}
    for verdict in held:
        if not isinstance(verdict, Verdict):
            continue
        hypothesis = dag.get(verdict.hypothesis)
        if not isinstance(hypothesis, Hypothesis):
            continue
        confirmed = verdict.result == "confirmed"
        by_pattern.setdefault(hypothesis.mutation_kind, []).append(confirmed)
        target = dag.get(hypothesis.problem)
        pattern = dag.get(hypothesis.pattern)
        if not isinstance(target, Problem) or not isinstance(pattern, Pattern):
            continue
        sources = {_domain(p) for p in dag.get_many(pattern.problems or ())
                   if isinstance(p, Problem)}
        for source in sorted(sources):
            by_domains.setdefault(f"{source} -> {_domain(target)}", []).append(confirmed)
    return ConfirmationRates(_rates(by_pattern), _rates(by_domains))


def _domain(problem: Problem) -> str:
    return problem.domains[0] if problem.domains else problem.name


def _rates(grouped: Mapping[str, list[bool]]) -> list[ConfirmationRate]:
    rates = []
    for key in sorted(grouped):
        results = grouped[key]
        confirmed = sum(results)
        low, high = rate_interval(confirmed, len(results))
        rates.append(ConfirmationRate(key, confirmed, len(results), low, high))
    return rates
