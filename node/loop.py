"""The autoresearch loop on one node and one problem: mutate, evaluate, keep or revert, record."""

from __future__ import annotations

import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

import trio
from pydantic import ValidationError

from node.hypothesis_tests import HypothesisTests
from node.loop_config import (
    Evaluate,
    LoopConfig,
    LoopSummary,
    Seal,
    Sealed,
    Step,
    StopReason,
    step_status,
)
from node.loop_memory import LoopMemory, strategy_digest
from node.loop_proposals import LoopProposals
from node.mutators import MutationFailed, Mutator, Search, Usage, in_worker
from node.neutral_drift import same_structure
from node.noise_gate import GateDecision, judge
from node.problem import baseline_files, fixed_sites
from node.store import RecordStore
from playbook import NOTHING_KNOWN, AffordanceSite, Knowledge
from research_dag import MAX_SOURCE, Experiment, Outcome, Problem, Transcript

__all__ = [
    "Evaluate",
    "LoopConfig",
    "LoopSummary",
    "ResearchLoop",
    "Seal",
    "Sealed",
    "Step",
    "StopReason",
    "step_status",
    "strategy_digest",
]


def _unsealed(record: Sealed) -> Sealed:
    return record


def _oversize(files: Mapping[str, str], mutable: list[str]) -> str:
    """Why a candidate cannot become a record (too big, or touching fixed files), or ''."""
    if set(files) != set(mutable):
        return f"the candidate must consist of exactly the mutable files {sorted(mutable)}"
    for name, source in files.items():
        if len(source) > MAX_SOURCE:
            return f"{name} has {len(source)} characters; the limit is {MAX_SOURCE}"
    return ""


class ResearchLoop(LoopMemory, LoopProposals):
    """Runs iterations against a durable store; a restart with the same store resumes. What it
    remembers of its attempts is node/loop_memory.py's, how it asks its mutator
    node/loop_proposals.py's."""

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
        spent: Callable[[], str | None] = lambda: None,
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
        # Why the run's model budget (--max-tokens / --max-cost) is spent, or None: checked
        # before each attempt, as the fuel budget is (every later evaluation would only time out).
        self.spent = spent
        self.spent_reason: str | None = None
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
        self._for_search: list[tuple[bool, Experiment]] = []  # node/loop_memory.py `_take_in`
        self._iteration = 0
        self._rng = random.Random(0)
        self._since_finding = 0
        self._failures = 0
        self._repeat = False  # was the last evaluation's candidate tried before?
        self._transcript: Transcript | None = None  # of the last evaluation, until recorded
        # Our experiments, and those of peers `informs` accepts, feed the model-based search
        # (a model's data, never a parent).
        self.search = (Search(problem, config.families, config.retune, fixed_sites(problem),
                              informs, author=config.author) if config.families else None)

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
        return self.seal(self._draft(files, outcome, fields))

    def _draft(
        self, files: Mapping[str, str], outcome: Outcome, fields: Mapping[str, object]
    ) -> Experiment:
        return Experiment.model_validate(
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

    def _unrecordable(
        self, files: Mapping[str, str], outcome: Outcome, fields: Mapping[str, object]
    ) -> str:
        """Why a proposal could not become a record (a field past its bound: more changes than
        an experiment lists, a description too long...), or '': a mutator's proposal is
        checked against the record's own schema, so no proposal can stop the loop."""
        try:
            self._draft(files, outcome, fields)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the record"
            return f"the proposal cannot be recorded: {where}: {first['msg']}"
        return ""

    async def prepare(self) -> LoopSummary:
        """Load history (or evaluate the baseline) and open this run's summary."""
        await trio.to_thread.run_sync(self.store.add, self.problem)
        await self._load()
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

    async def _drifts(self, experiment: Experiment, summary: LoopSummary) -> bool:
        """Does `experiment` become the parent by neutral drift: a new candidate scoring
        exactly the best's score, while drifts stay within `drift` of the attempts?"""
        outcome, best = experiment.outcome, self._best
        if self._repeat or best is None or outcome.status != "ok" or outcome.score is None:
            return False
        if outcome.score != best.outcome.score or experiment.strategy == best.strategy:
            return False
        if not await in_worker(same_structure, best.strategy, experiment.strategy):  # parses
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
        self.spent_reason = self.spent()
        if self.spent_reason is not None:
            return "model_budget"
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
        parent = self._best or self._baseline
        assert parent is not None
        fields: dict[str, object] = {
            "parent": parent.id,
            "diff": proposal.diff,
            "mutation_kind": proposal.mutation_kind,
            "description": proposal.description,
            "hypothesis": proposal.hypothesis,
            "mutator": self.mutator.name,
            # The vocabulary's fields are left out when empty (None: not described).
            "changes": list(proposal.changes) or None,
            "applied": list(proposal.applied) or None,
            "hypothesis_id": proposal.hypothesis_id,
        }
        unrecordable = self._unrecordable(proposal.files, parent.outcome, fields)
        if unrecordable:  # checked before it costs an evaluation
            return self._fail_proposal(unrecordable, retryable=True)
        self._failures = 0
        outcome = await self._evaluate(proposal.files)
        experiment = self._experiment(proposal.files, outcome, **fields)
        await self._record(experiment)
        if proposal.hypothesis_id is not None:
            self._tests.count(proposal.hypothesis_id)
        decision = self._gate(outcome)
        kept = self._better(experiment)
        if decision is not None and not kept and self.search is not None:
            self.search.memory.rejected(experiment.id)  # the bandit counts what the gate kept
        drift = not kept and decision is None and await self._drifts(experiment, summary)
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
