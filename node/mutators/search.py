"""One problem's search across operator families: a bandit picks model-based numeric search,
a structural change or a random perturbation by their measured success here (and the
playbook's priors), and the chosen family makes the one change."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from node.mutators import compose, interaction
from node.mutators.base import MutationContext, MutationFailed, Proposal, applied_patterns
from node.mutators.combination import COMBINED_HYPOTHESIS, combination
from node.mutators.compose import COMPOSED_HYPOTHESIS, assign, compositions
from node.mutators.memory import (
    FAMILY_NAMES,
    MODEL,
    PERTURB,
    PERTURB_KINDS,
    STRUCTURAL,
    SearchMemory,
)
from node.mutators.model import ModelSearch, Suggestion, proposal_hypothesis
from node.mutators.operators import OPERATIONS_OF, TOGGLE_BOOL
from node.mutators.patch import make_diff
from research_dag import Experiment, Problem

Informs = Callable[[Experiment], bool]

Offline = Callable[[MutationContext], Proposal]
# Operations whose playbook classes speak for the value families (model, perturb).
VALUE_OPERATIONS = frozenset({"perturb", "scale"})
REDRAWS = 4  # offline draws of one family before it is passed over as only repeating itself
# The share of proposals that go to the model family first whatever the bandit draws (the
# other families keep the rest by the bandit; SMAC interleaves random configurations with its
# model the same way, the other way round). With 50 evaluations the bandit cannot tell the
# families apart (each improves on 20-30 % of its tries) while the model's improvements are
# the large ones: the model alone beat Optuna's TPE on finance_factors and search_ranking,
# the model with perturbations at half the budget each lost to it (bench/RESULTS.md "Issue
# 14: 20 seeds"; bench/bench_search.py --model-share 0 measures without). 0: none.
MODEL_SHARE = 0.5


class Search:
    """Held by a loop for its problem: observes every experiment it holds (its own and its
    peers'), and proposes through `MutationContext.search`. `families`: those enabled (all
    three by default; none: the offline operators exactly as before). `retune`: knobs per
    model proposal (1: one knob, by learned importance). `informs`: whether a peer's experiment
    held back by `hold` is data now (its author vouches: node/swarm.py)."""

    def __init__(self, problem: Problem, families: tuple[str, ...] = FAMILY_NAMES,
                 retune: int = 1, fixed: tuple[str, ...] = (),
                 informs: Informs = lambda experiment: False,
                 family_prior: Mapping[str, tuple[float, float]] | None = None,
                 author: str = "local") -> None:
        self.problem = problem
        self.author = author  # whose experiments are ours (compose.py: who adds which move)
        # family -> (pseudo-attempts, pseudo-wins) added to the bandit's counts: what another
        # problem's runs say of the families (bench/bench_knowledge.py transfer arms; none here).
        self.family_prior = dict(family_prior or {})
        self.families = tuple(name for name in FAMILY_NAMES if name in families)
        self.memory = SearchMemory(problem)
        self.model = ModelSearch(problem.metric.direction, retune)
        self.fixed = fixed  # the package's fixed sites (node/problem.py fixed_sites)
        self.informs = informs

    def observe(self, experiment: Experiment) -> None:
        self.memory.observe(experiment)

    def hold(self, experiment: Experiment) -> None:
        """A peer's experiment that is not data yet: observed once `informs` accepts it."""
        self.memory.hold(experiment)

    def crashing(self) -> frozenset[tuple[str, str]]:
        return self.memory.crashing()

    def propose(self, context: MutationContext, offline: Offline) -> Proposal:
        """The first family, in the bandit's order, that can make a change."""
        self.memory.admit(self.informs)
        if STRUCTURAL in self.families:
            screened = self._screen(context)
            if screened is not None:
                return screened
        if MODEL in self.families:
            combined = self._combined(context)
            if combined is not None:
                return combined
        failure: MutationFailed | None = None
        repeat: Proposal | None = None
        for family in self.ranked(context):
            if family == MODEL:
                proposal = self._model(context)
                if proposal is not None:
                    return proposal
                continue
            if family == STRUCTURAL:
                pair = self._switch_pair(context)
                if pair is not None:
                    return pair
            for _ in range(REDRAWS):  # each draw moves the rng on: another change
                try:
                    proposal = offline(_only(context, family))
                except MutationFailed as error:
                    failure = failure or error
                    break
                proposal = dataclasses.replace(proposal, family=family)
                if not self.memory.tried(proposal.files):
                    return proposal
                repeat = repeat or proposal
        if repeat is not None:
            return repeat  # every family only repeats what was evaluated: the loop's cache answers
        if failure is not None:
            raise failure
        raise MutationFailed("no operator family can change this strategy", retryable=False)

    def ranked(self, context: MutationContext) -> list[str]:
        """Families by a Thompson draw: Beta(1 + wins, 1 + losses) of each family's newest
        attempts here, times the playbook's prior for its operations; the best draw first."""
        counts = self.memory.family_counts()
        draws = {}
        for family in self.families:
            tries, wins = counts[family]
            prior_tries, prior_wins = self.family_prior.get(family, (0.0, 0.0))
            draw = context.rng.betavariate(1 + wins + prior_wins,
                                           1 + tries - wins + prior_tries - prior_wins)
            draws[family] = draw * _prior(context.class_weights, family)
        ranked = sorted(self.families, key=lambda family: -draws[family])
        if MODEL_SHARE > 0 and MODEL in ranked and context.rng.random() < MODEL_SHARE:
            ranked.remove(MODEL)
            ranked.insert(0, MODEL)
        return ranked

    def _combined(self, context: MutationContext) -> Proposal | None:
        """The improving moves made from the best's parent that the best lacks (in a swarm:
        the other winners of the round the best won) added to it, alone or together, when
        this node's share of the round says so (compose.py; with compose.SHARE = 0, the
        default, one peer's one-knob move: `_combination`); otherwise, and always in a solo
        run (whose winners are its bests), None: the families as usual."""
        if compose.SHARE <= 0:
            return self._combination(context)
        options = [option for option in compositions(
            self.memory, context.best_files, self.memory.tried)
            if not any(context.avoids(c.operation, c.site) for c in option.changes)]
        lineage = self.memory.lineage(context.best_files)
        authors = set() if lineage is None else self.memory.authors_from(lineage[1])
        chosen = assign(options, authors, self.author,
                        "" if lineage is None else lineage[0], context.rng)
        if chosen is None:
            return None
        return Proposal(
            files=chosen.files,
            diff=make_diff(context.best_files, chosen.files),
            mutation_kind=chosen.kind,
            description=chosen.description,
            hypothesis=COMPOSED_HYPOTHESIS,
            changes=chosen.changes,
            applied=applied_patterns(context, chosen.changes),
            family=MODEL,
        )

    def _combination(self, context: MutationContext) -> Proposal | None:
        """One improving one-knob move of this structure whose knob the best still holds at
        its parent's value, added to the best, with chance moves / siblings (model.py
        `combination`: about one node per move)."""
        shape = self.memory.shape(context.best_files)
        structure = None if shape is None else self.memory.structures.get(shape.key)
        if shape is None or structure is None:
            return None
        suggestion = combination(
            self.memory, structure, context.best_files, shape,
            lambda score, other: self.problem.metric.better(score, other), context.rng,
            lambda knob: not context.avoids("perturb", knob.site), self.model.retune,
        )
        if suggestion is None:
            return None
        return self._proposal(context, suggestion, COMBINED_HYPOTHESIS)

    def _screen(self, context: MutationContext) -> Proposal | None:
        """A switch not yet toggled alone from this setting of the switches (interaction.py)."""
        if not interaction.SCREEN:
            return None
        found = interaction.screen(self.memory, context.best_files, context.rng,
                                   lambda knob: not context.avoids("toggle", knob.site),
                                   self.memory.searchers())
        if found is None:
            return None
        _, suggestion = found
        return self._proposal(context, suggestion, interaction.SCREEN_HYPOTHESIS,
                              kind=TOGGLE_BOOL, family=STRUCTURAL)

    def _switch_pair(self, context: MutationContext) -> Proposal | None:
        """Two switches that each failed alone here, toggled together (interaction.py)."""
        if not interaction.PAIRS:
            return None
        found = interaction.switch_pair(
            self.memory, context.best_files, context.rng,
            lambda score, other: self.problem.metric.better(score, other),
            lambda knob: not context.avoids("toggle", knob.site))
        if found is None:
            return None
        _, suggestion = found
        return self._proposal(
            context, suggestion, interaction.HYPOTHESIS, kind=interaction.KIND,
            description="toggle together " + suggestion.description.removeprefix("retune "),
            family=STRUCTURAL)

    def _model(self, context: MutationContext) -> Proposal | None:
        shape = self.memory.shape(context.best_files)
        if shape is None or not shape.knobs:
            return None
        suggestion = self.model.suggest(
            self.memory, context.best_files, shape, context.rng,
            lambda knob: not context.avoids("perturb", knob.site),
        )
        if suggestion is None:
            return None
        structure = self.memory.structures[shape.key]
        return self._proposal(context, suggestion, proposal_hypothesis(
            len(suggestion.values), len(structure.observations)))

    def _proposal(self, context: MutationContext, suggestion: Suggestion, hypothesis: str,
                  kind: str | None = None, description: str | None = None,
                  family: str = MODEL) -> Proposal:
        """The suggestion as a proposal: the model's, or (kind, description, family given) a
        switch rule's made with the model's knob editing."""
        return Proposal(
            files=suggestion.files,
            diff=make_diff(context.best_files, suggestion.files),
            mutation_kind=suggestion.kind if kind is None else kind,
            description=suggestion.description if description is None else description,
            hypothesis=hypothesis,
            changes=suggestion.changes,
            applied=applied_patterns(context, suggestion.changes),
            family=family,
        )


def _only(context: MutationContext, family: str) -> MutationContext:
    """The context with the other family's offline kinds weighted 0 (and no search)."""
    weights = dict(context.kind_weights)
    for kind in OPERATIONS_OF:
        if (kind in PERTURB_KINDS) != (family == PERTURB):
            weights[kind] = 0.0
    return dataclasses.replace(context, kind_weights=weights, search=None)


def _prior(class_weights: Mapping[str, float], family: str) -> float:
    """The mean playbook weight of the classes this family's operations make (1.0: none)."""
    value = family != "structural"
    weights = [weight for cls, weight in class_weights.items()
               if (cls.split(":", 1)[0] in VALUE_OPERATIONS) == value]
    return sum(weights) / len(weights) if weights else 1.0
