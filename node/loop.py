"""The autoresearch loop on one node and one problem: mutate, evaluate, keep or revert, record."""

from __future__ import annotations

import hashlib
import itertools
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, TypeVar

import trio

from node.hypothesis_tests import HypothesisTests
from node.mutators import (
    FAMILY_NAMES,
    MutationContext,
    MutationFailed,
    Mutator,
    Proposal,
    Search,
    Usage,
)
from node.neutral_drift import same_structure
from node.noise_gate import GateDecision, judge
from node.problem import baseline_files, fixed_sites
from node.store import RecordStore
from playbook import (
    NOTHING_KNOWN,
    AffordanceSite,
    Knowledge,
    PlannedChange,
    class_weights,
    guidance_lines,
    kind_stats,
    kind_weights,
    pattern_guidance,
    strategy_affordances,
)
from research_dag import MAX_SOURCE, Experiment, Outcome, Problem, Transcript
from sandbox import Evaluated

StopReason = Literal[
    "target_reached", "iterations", "fuel_budget", "mutator_exhausted", "interrupted"
]
# A model-backed problem's evaluation also returns the transcript of its model calls.
Evaluate = Callable[[Mapping[str, str]], Outcome | Evaluated]
Sealed = TypeVar("Sealed", Experiment, Transcript)


class Seal(Protocol):
    """Signs a new record of ours before it is stored or shared."""

    def __call__(self, record: Sealed, /) -> Sealed: ...


def _unsealed(record: Sealed) -> Sealed:
    return record
MAX_HYPOTHESES = 5  # open hypotheses shown to a mutator as guidance
MAX_HYPOTHESIS_TEXT = 300  # characters of each


@dataclass(frozen=True)
class LoopConfig:
    iterations: int = 50
    fuel_budget: int | None = None  # total fuel (both phases) across this run's evaluations
    plateau: int = 8  # tries without a finding before asking for a structural change
    target_streak: int = 3  # stop once the best has met the target this many evaluations
    recent: int = 8  # attempts shown to the mutator
    max_mutator_failures: int = 10  # consecutive failed proposals before giving up
    seed: int = 0
    author: str = "local"
    # While the Knowledge holds open hypotheses for this problem, this share of proposals is a
    # targeted one (the hypothesis's planned change), each hypothesis at most its `tries` times
    # from this node.
    hypothesis_share: float = 0.25
    # Memory stays bounded whatever the uptime (docs/storage.md): the newest `window` attempts
    # (kind priors, the outcome memo, ids already offered) and `history` changelog steps.
    window: int = 1000
    history: int = 10_000
    # The offline mutator's operator families a bandit chooses among (node/mutators/search.py;
    # () switches the search off: the operators drawn as before, no crash learning), and how
    # many knobs a model-based proposal sets.
    families: tuple[str, ...] = FAMILY_NAMES
    retune: int = 1
    stop_at_target: bool = True  # False (--no-stop): spend the whole budget past the target
    # A free proposal (no tokens or money spent on it) that repeats a candidate already tried
    # is drawn again, at most this many times; one still repeated is answered from the cache.
    redraws: int = 8
    # Neutral drift: an attempt scoring exactly the best's score that changed only numbers (a
    # different candidate, node/neutral_drift.py) may become the parent, for at most this share
    # of the attempts (0: only strict improvements).
    drift: float = 0.0


@dataclass(frozen=True)
class Step:
    """One attempt as the changelog shows it."""

    iteration: int
    experiment_id: str
    status: str  # keep / drift / discard / crash (or the outcome status for other failures)
    score: float | None
    best_score: float | None
    mutation_kind: str
    description: str
    fuel: int
    gate: str = ""  # the noise gate's interval and test, for a package that asks a model
    family: str = ""  # the operator family it came from ("" when none was chosen)
    repeat: bool = False  # a candidate tried before: its outcome came from the cache


@dataclass
class LoopSummary:
    problem_id: str
    problem_name: str
    direction: str
    target: float | None
    baseline_score: float | None
    best_score: float | None
    best_experiment: str | None
    iterations: int = 0
    kept: int = 0
    mutator_failures: int = 0
    fuel_spent: int = 0  # of every attempt, repeats answered from the cache included
    evaluations: int = 0  # attempts evaluated in the sandbox (distinct candidates)
    evaluation_fuel: int = 0  # the fuel of those
    repeats: int = 0  # attempts answered from the cache (a candidate tried before)
    redrawn: int = 0  # proposals drawn again because they repeated a tried candidate
    drifts: int = 0  # equal-score attempts that became the parent (LoopConfig.drift)
    usage: Usage = field(default_factory=Usage)
    stop_reason: StopReason = "iterations"
    history: list[Step] = field(default_factory=list)


def step_status(outcome: Outcome, kept: bool) -> str:
    if outcome.status == "ok":
        return "keep" if kept else "discard"
    return "crash" if outcome.status == "crash" else outcome.status


def strategy_digest(files: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _oversize(files: Mapping[str, str], mutable: list[str]) -> str:
    """Why a candidate cannot become a record (too big, or touching fixed files), or ''."""
    if set(files) != set(mutable):
        return f"the candidate must consist of exactly the mutable files {sorted(mutable)}"
    for name, source in files.items():
        if len(source) > MAX_SOURCE:
            return f"{name} has {len(source)} characters; the limit is {MAX_SOURCE}"
    return ""


class ResearchLoop:
    """Runs iterations against a durable store; a restart with the same store resumes."""

    def __init__(
        self,
        problem: Problem,
        evaluate: Evaluate,
        mutator: Mutator,
        store: RecordStore,
        config: LoopConfig,
        on_step: Callable[[Step, LoopSummary], None] | None = None,
        on_mutator_failure: Callable[[str], None] | None = None,
        on_record: Callable[[Experiment | Transcript], None] | None = None,
        trusted: Callable[[Experiment], bool] = lambda experiment: True,
        informs: Callable[[Experiment], bool] = lambda experiment: False,
        seal: Seal = _unsealed,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        knowledge: Callable[[], Knowledge] = lambda: NOTHING_KNOWN,
    ) -> None:
        self.problem = problem
        self.evaluate_fn = evaluate
        self.mutator = mutator
        self.store = store
        self.config = config
        self.on_step = on_step
        self.on_mutator_failure = on_mutator_failure
        self.on_record = on_record
        # Which stored experiments may become parents: in a swarm, only our own and those we
        # replayed ourselves (a peer's claim is data until verified).
        self.trusted = trusted
        # Which of the other stored experiments may still be the search model's data (never
        # parents): a swarm node takes those of authors whose claims its replays reproduced; a
        # solo run none. A forged score fed to the model steers where it spends evaluations.
        self.informs = informs
        self.seal = seal  # signs a new experiment before it is stored or shared
        self.now_ms = now_ms
        # The live patterns and open hypotheses this node derived (SwarmNode: its curator; a
        # solo run: its own store), asked for at every proposal.
        self.knowledge = knowledge
        # Records are named by their content: two identical attempts (a repeated candidate
        # whose cached outcome is recorded in the same millisecond) would be one record and one
        # changelog row. Our timestamps therefore strictly increase, across restarts too.
        self._last_ms = 0
        self.metric = problem.metric
        self._experiments: deque[Experiment] = deque(maxlen=max(1, config.window))
        self._count = 0  # attempts this loop has held in all (the window keeps the newest)
        # strategy digest -> outcome (deterministic), the newest `window`
        self._outcomes: OrderedDict[str, Outcome] = OrderedDict()
        self._best: Experiment | None = None
        self._baseline: Experiment | None = None
        self.summary: LoopSummary | None = None  # readable after an interrupt too
        self._tests = HypothesisTests(
            problem.id, config.hypothesis_share, config.seed, config.window
        )
        self._affordances: tuple[str, list[AffordanceSite]] = ("", [])  # of the best, by id
        self._known: OrderedDict[str, None] = OrderedDict()  # the newest `window` ids held
        self._iteration = 0
        self._rng = random.Random(0)
        self._since_finding = 0
        self._failures = 0
        self._repeat = False  # was the last evaluation's candidate tried before?
        self._transcript: Transcript | None = None  # of the last evaluation, until recorded
        # Our experiments, and those of peers `informs` accepts, feed the model-based search
        # (a model's data, never a parent).
        self.search = (Search(problem, config.families, config.retune, fixed_sites(problem),
                              informs) if config.families else None)

    def observe(self, experiment: Experiment) -> None:
        """Take in an experiment of this problem as the search's data (a peer's too)."""
        if self.search is not None and experiment.problem == self.problem.id:
            self.search.observe(experiment)

    def offer_data(self, experiment: Experiment) -> None:
        """A peer's experiment: the search's data now if `informs` accepts it, else held
        until its author vouches (a replay of a later claim of theirs reproduced)."""
        if self.informs(experiment):
            self.observe(experiment)
        elif self.search is not None and experiment.problem == self.problem.id:
            self.search.hold(experiment)

    async def _evaluate(self, files: Mapping[str, str]) -> Outcome:
        """The candidate's outcome; a model-backed one's transcript waits in `_transcript` for
        the experiment made next (`_experiment`, `_record`)."""
        self._transcript = None
        self._repeat = True
        digest = strategy_digest(files)
        cached = self._outcomes.get(digest)
        # A model-backed candidate is evaluated again (the gateway's cache answers its calls):
        # each experiment links the transcript of its own evaluation.
        if cached is not None and cached.status != "timeout" and self.problem.model is None:
            return cached
        self._repeat = cached is not None
        result = await trio.to_thread.run_sync(self.evaluate_fn, files, abandon_on_cancel=True)
        outcome = result.outcome if isinstance(result, Evaluated) else result
        if isinstance(result, Evaluated):
            mine = result.transcript.model_copy(update={"author": self.config.author})
            self._transcript = self.seal(mine)
        self._remember_outcome(digest, outcome, replace=True)
        return outcome

    def _remember_outcome(self, digest: str, outcome: Outcome, replace: bool = False) -> None:
        if replace or digest not in self._outcomes:
            self._outcomes[digest] = outcome
        self._outcomes.move_to_end(digest)
        while len(self._outcomes) > max(1, self.config.window):
            self._outcomes.popitem(last=False)

    def _hold(self, experiment: Experiment) -> None:
        """Count an attempt into the working set (the oldest beyond the window leave it)."""
        self._experiments.append(experiment)
        self.observe(experiment)
        self._count += 1
        self._known[experiment.id] = None
        while len(self._known) > max(1, self.config.window):
            self._known.popitem(last=False)

    async def _record(self, experiment: Experiment) -> None:
        transcript, self._transcript = self._transcript, None
        if transcript is not None and experiment.transcript == transcript.id:
            await trio.to_thread.run_sync(self.store.add, transcript)  # before what names it
            if self.on_record:
                self.on_record(transcript)
        await trio.to_thread.run_sync(self.store.add, experiment)
        self._hold(experiment)
        if self.on_record:
            self.on_record(experiment)

    def _load_history(self) -> None:
        # Hypotheses in the store are not read here: a peer's are never used, and this node's
        # own reach the loop through `knowledge` (docs/protocol.md, "Derived records").
        for record in self.store.iter_records(kind="experiment", problem=self.problem.id):
            if not isinstance(record, Experiment):
                continue
            if record.author == self.config.author:
                self._last_ms = max(self._last_ms, record.created_ms)
                if record.hypothesis_id is not None:
                    self._tests.count(record.hypothesis_id)
            if not self.trusted(record):
                self.offer_data(record)
                continue
            self._hold(record)
            self._remember_outcome(strategy_digest(record.strategy), record.outcome)
            if record.parent is None and self._baseline is None:
                self._baseline = record
            if self._better(record):
                self._best = record

    def _better(self, experiment: Experiment) -> bool:
        outcome = experiment.outcome
        if outcome.status != "ok" or outcome.score is None:
            return False
        best = self._best_score()
        if best is None:
            return True
        decision = self._gate(outcome)  # a model's outputs vary: beyond noise, or not kept
        return decision.kept if decision is not None else self.metric.better(outcome.score, best)

    def _gate(self, outcome: Outcome) -> GateDecision | None:
        return judge(self.problem, outcome, None if self._best is None else self._best.outcome)

    def _best_score(self) -> float | None:
        return None if self._best is None else self._best.outcome.score

    def _experiment(
        self, files: Mapping[str, str], outcome: Outcome, **fields: object
    ) -> Experiment:
        self._last_ms = max(self.now_ms(), self._last_ms + 1)
        return self.seal(
            Experiment.model_validate(
                {
                    "problem": self.problem.id,
                    "strategy": dict(files),
                    "outcome": outcome,
                    "author": self.config.author,
                    "created_ms": self._last_ms,
                    "transcript": None if self._transcript is None else self._transcript.id,
                    **fields,
                },
                strict=False,
            )
        )

    def _context(
        self, rng: random.Random, since_finding: int, knowledge: Knowledge,
        plan: PlannedChange | None,
    ) -> MutationContext:
        scores = {
            e.id: (e.outcome.score if e.outcome.status == "ok" else None) for e in self._experiments
        }
        stats = kind_stats(self._experiments, scores, self.metric)
        best = self._best or self._baseline
        assert best is not None
        weights: dict[str, float] = {}
        sources: dict[str, tuple[str, ...]] = {}
        if knowledge.patterns:
            if self._affordances[0] != best.id:  # the static analysis, once per new best
                self._affordances = (best.id, strategy_affordances(best.strategy))
            weights, sources = class_weights(knowledge, self._affordances[1])
        hypotheses = tuple(
            _one_line(f"hypothesis ({record.mutation_kind}): {record.text}", MAX_HYPOTHESIS_TEXT)
            for record in self._tests.open(knowledge)[:MAX_HYPOTHESES]
        )
        return MutationContext(
            problem=self.problem,
            best_files=dict(best.strategy),
            best_score=self._best_score(),
            best_outcome=best.outcome,
            recent=tuple(itertools.islice(
                self._experiments, max(0, len(self._experiments) - self.config.recent), None)),
            kind_weights=kind_weights(stats),
            class_weights=weights,
            class_patterns=sources,
            plan=plan,
            guidance=pattern_guidance(knowledge) + hypotheses + guidance_lines(stats),
            structural=since_finding >= self.config.plateau,
            rng=rng,
            search=self.search,
            crashing=frozenset() if self.search is None else self.search.crashing(),
            fixed_sites=() if self.search is None else self.search.fixed,
        )

    async def _propose(self) -> Proposal:
        """The mutator's proposal. On a targeted iteration, the first open hypothesis whose
        planned change the mutator can make here; one it cannot (no such site) is set aside
        for this node, and when none works an ordinary proposal is made."""
        knowledge = self.knowledge()
        for plan in self._tests.plans(knowledge, self._iteration):
            context = self._context(self._rng, self._since_finding, knowledge, plan)
            try:
                proposal = await self.mutator.propose(context)
            except MutationFailed as failure:
                self._tests.set_aside(plan.hypothesis_id)
                if not failure.retryable or failure.usage.cost_usd or failure.usage.input_tokens:
                    raise  # a paid call failed: count it as the failed proposal it was
            else:
                return replace(proposal, hypothesis_id=plan.hypothesis_id)
        context = self._context(self._rng, self._since_finding, knowledge, None)
        return await self.mutator.propose(context)

    async def prepare(self) -> LoopSummary:
        """Load history (or evaluate the baseline) and open this run's summary."""
        await trio.to_thread.run_sync(self.store.add, self.problem)
        await trio.to_thread.run_sync(self._load_history)
        if self._baseline is None:
            files = baseline_files(self.problem)
            outcome = await self._evaluate(files)
            baseline = self._experiment(
                files,
                outcome,
                mutation_kind="baseline",
                description="the package's own strategy",
                mutator="baseline",
            )
            await self._record(baseline)
            self._baseline = baseline
            if self._better(baseline):
                self._best = baseline
        summary = self.summary = LoopSummary(
            problem_id=self.problem.id,
            problem_name=self.problem.name,
            direction=self.metric.direction,
            target=self.metric.target,
            baseline_score=self._baseline.outcome.score,
            best_score=self._best_score(),
            best_experiment=None if self._best is None else self._best.id,
        )
        self._iteration = self._count
        # Seeded by history length, so a resumed run continues rather than repeats itself.
        self._rng = random.Random(f"{self.config.seed}:{self.problem.id}:{self._iteration}")
        return summary

    @property
    def best(self) -> Experiment | None:
        return self._best

    def offer(self, experiment: Experiment) -> bool:
        """Consider a trusted experiment from elsewhere (a verified peer result); adopt it as
        the parent of the next mutation when it beats the current best."""
        if experiment.problem != self.problem.id or experiment.id in self._known:
            return False
        self._hold(experiment)
        self._remember_outcome(strategy_digest(experiment.strategy), experiment.outcome)
        if not self._better(experiment):
            return False
        self._best = experiment
        self._since_finding = 0
        if self.summary is not None:
            self.summary.best_score = self._best_score()
            self.summary.best_experiment = experiment.id
        return True

    def _tried(self, files: Mapping[str, str]) -> bool:
        """Was this candidate tried already (by us, or a peer whose attempt we hold)?"""
        known = self._outcomes.get(strategy_digest(files))
        return known is not None and known.status != "timeout"

    def _drifts(self, experiment: Experiment, summary: LoopSummary) -> bool:
        """Does `experiment` become the parent by neutral drift: a new candidate scoring
        exactly the best's score, while drifts stay within `drift` of the attempts?"""
        outcome, best = experiment.outcome, self._best
        if self._repeat or best is None or outcome.status != "ok" or outcome.score is None:
            return False
        if outcome.score != best.outcome.score or experiment.strategy == best.strategy:
            return False
        if not same_structure(best.strategy, experiment.strategy):
            return False
        return summary.drifts + 1 <= self.config.drift * (summary.iterations + 1)

    def _fail_proposal(self, reason: str, retryable: bool) -> StopReason | None:
        summary = self.summary
        assert summary is not None
        summary.mutator_failures += 1
        self._failures += 1
        if self.on_mutator_failure:
            self.on_mutator_failure(reason)
        if not retryable or self._failures >= self.config.max_mutator_failures:
            return "mutator_exhausted"
        return None

    async def step(self) -> Step | StopReason | None:
        """One iteration: a Step, a reason to stop, or None (a failed proposal; go on)."""
        summary = self.summary
        assert summary is not None, "call prepare() first"
        if self.config.fuel_budget is not None and summary.fuel_spent >= self.config.fuel_budget:
            return "fuel_budget"
        try:
            proposal = await self._propose()
            summary.usage = summary.usage + proposal.usage
            redraws = 0  # what was tried is not proposed again (a paid proposal is kept)
            while (redraws < self.config.redraws and proposal.usage == Usage()
                   and self._tried(proposal.files)):
                redraws += 1
                summary.redrawn += 1
                proposal = await self._propose()
                summary.usage = summary.usage + proposal.usage
        except MutationFailed as failure:
            summary.usage = summary.usage + failure.usage
            return self._fail_proposal(failure.reason, failure.retryable)
        oversize = _oversize(proposal.files, self.problem.mutable)
        if oversize:
            return self._fail_proposal(oversize, retryable=True)
        self._failures = 0
        parent = self._best or self._baseline
        assert parent is not None
        outcome = await self._evaluate(proposal.files)
        experiment = self._experiment(
            proposal.files,
            outcome,
            parent=parent.id,
            diff=proposal.diff,
            mutation_kind=proposal.mutation_kind,
            description=proposal.description,
            hypothesis=proposal.hypothesis,
            mutator=self.mutator.name,
            # The vocabulary's fields are left out when empty (None: not described).
            changes=list(proposal.changes) or None,
            applied=list(proposal.applied) or None,
            hypothesis_id=proposal.hypothesis_id,
        )
        await self._record(experiment)
        if proposal.hypothesis_id is not None:
            self._tests.count(proposal.hypothesis_id)
        decision = self._gate(outcome)
        kept = self._better(experiment)
        drift = not kept and decision is None and self._drifts(experiment, summary)
        if kept:
            self._best = experiment
            self._since_finding = 0
            summary.kept += 1
        else:  # a drift is no finding: a plateau still asks for a structural change
            self._since_finding += 1
        if drift:
            self._best = experiment
            summary.drifts += 1
        summary.iterations += 1
        summary.fuel_spent += outcome.fuel
        summary.repeats += self._repeat
        summary.evaluations += not self._repeat
        summary.evaluation_fuel += 0 if self._repeat else outcome.fuel
        summary.best_score = self._best_score()
        summary.best_experiment = None if self._best is None else self._best.id
        step = Step(
            iteration=self._iteration,
            experiment_id=experiment.id,
            status="drift" if drift else step_status(outcome, kept),
            score=outcome.score,
            best_score=summary.best_score,
            mutation_kind=proposal.mutation_kind,
            description=proposal.description,
            fuel=outcome.fuel,
            gate="" if decision is None else decision.describe(),
            family=proposal.family,
            repeat=self._repeat,
        )
        self._iteration += 1
        summary.history.append(step)
        if len(summary.history) > max(1, self.config.history):
            del summary.history[: len(summary.history) - self.config.history]
        if self.on_step:
            self.on_step(step, summary)
        return step

    async def run(self) -> LoopSummary:
        """Prepare, then iterate until a stop rule fires (see LoopConfig)."""
        summary = await self.prepare()
        streak = 0
        try:
            for _ in range(self.config.iterations):
                result = await self.step()
                if isinstance(result, str):
                    summary.stop_reason = result
                    break
                if result is None:
                    continue
                best = summary.best_score
                streak = streak + 1 if best is not None and self.metric.reached(best) else 0
                if self.config.stop_at_target and streak >= self.config.target_streak:
                    summary.stop_reason = "target_reached"
                    break
        except (trio.Cancelled, KeyboardInterrupt):
            summary.stop_reason = "interrupted"
            raise
        finally:
            summary.best_score = self._best_score()
        return summary
