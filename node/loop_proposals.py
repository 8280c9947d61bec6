"""How a research loop asks its mutator for a change: the context it shows (the best, recent
attempts, kind and class weights, the playbook's guidance and open hypotheses) and the
hypotheses it tests by planned changes."""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from node.hypothesis_tests import HypothesisTests
from node.loop_config import LoopConfig
from node.mutators import MutationContext, MutationFailed, Mutator, Proposal, Search, in_worker
from playbook import (
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
from research_dag import Experiment, Metric, Problem

MAX_HYPOTHESES = 5  # open hypotheses shown to a mutator as guidance
MAX_HYPOTHESIS_TEXT = 300  # characters of each


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"



class LoopProposals:
    """The proposing half of `ResearchLoop` (node/loop.py), which sets every attribute below."""

    problem: Problem
    mutator: Mutator
    config: LoopConfig
    metric: Metric
    knowledge: Callable[[], Knowledge]
    search: Search | None
    _experiments: deque[Experiment]
    _best: Experiment | None
    _baseline: Experiment | None
    _tests: HypothesisTests
    _affordances: tuple[str, list[AffordanceSite]]
    _rng: random.Random
    _since_finding: int
    _iteration: int

    if TYPE_CHECKING:  # node/loop.py and node/loop_memory.py

        def _best_score(self) -> float | None: ...

        async def _take_in(self) -> None: ...

    async def _context(
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
                found = await in_worker(strategy_affordances, best.strategy)  # seconds if large
                self._affordances = (best.id, found)
            weights, sources = class_weights(knowledge, self._affordances[1])
        hypotheses = tuple(
            _one_line(f"hypothesis ({record.mutation_kind}): {record.text}", MAX_HYPOTHESIS_TEXT)
            for record in self._tests.open(knowledge, best.id)[:MAX_HYPOTHESES]
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
        """The mutator's proposal, after the search took in what was queued for it (the
        mutator uses the search in a worker thread: node.mutators.in_worker). On a targeted
        iteration, the first open hypothesis whose planned change the mutator can make here;
        one it cannot (no such site) is set aside for this node, and when none works an
        ordinary proposal is made."""
        await self._take_in()
        knowledge = self.knowledge()
        best = self._best or self._baseline
        best_id = None if best is None else best.id
        for plan in self._tests.plans(knowledge, self._iteration, best_id):
            context = await self._context(self._rng, self._since_finding, knowledge, plan)
            try:
                proposal = await self.mutator.propose(context)
            except MutationFailed as failure:
                self._tests.set_aside(plan.hypothesis_id, best_id)
                if not failure.retryable or failure.usage.cost_usd or failure.usage.input_tokens:
                    raise  # a paid call failed: count it as the failed proposal it was
            else:
                return replace(proposal, hypothesis_id=plan.hypothesis_id)
        context = await self._context(self._rng, self._since_finding, knowledge, None)
        return await self.mutator.propose(context)

