"""The default offline mutator: one AST-located edit to the strategy, drawn with the context rng."""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Mapping

from node.mutators.base import (
    MutationContext,
    MutationFailed,
    Proposal,
    applied_patterns,
    in_worker,
)
from node.mutators.operators import (
    FAMILIES,
    HYPOTHESES,
    OPERATIONS_OF,
    OPERATOR_KINDS,
    Change,
    Site,
)
from node.mutators.patch import make_diff
from node.mutators.sites import collect_sites
from node.mutators.text import TextOperators
from playbook import PlannedChange, parse, site_matches
from research_dag import MAX_SOURCE, Qualifier
from research_dag import Change as Described

__all__ = ["OPERATOR_KINDS", "OfflineMutator"]

# Bounds the search for a change that parses and is not one of the recent attempts.
MAX_ATTEMPTS = 32
SITE_CACHE = 8  # files whose sites are kept (a few strategies' worth of mutable files)
WANT_DRAWS = 16  # draws at one site for a planned qualifier (a perturbation's direction)
STRUCTURAL_HYPOTHESIS = "the search has plateaued; a bigger change across families may escape it"

Pools = dict[str, list[Site]]
Drawn = tuple[Site, Change]


class OfflineMutator:
    """Perturbs, zeroes, prunes, swaps, rescales and toggles literals: no network, no cost.

    Draws a kind by `context.kind_weights` times its sites' mean class weight
    (`context.class_weights`), then a site by its class weight; with a `context.plan`, only
    the plan's class at the plan's sites. Every proposal describes its changes exactly
    (operation, affordance, site). Deterministic: the same context and `context.rng` state
    give the same proposal.
    """

    name = "offline"

    def __init__(self) -> None:
        # (path, text) -> its sites: the best strategy changes only when a proposal wins, and
        # reading a file (parse, pins, walk) is most of a proposal's cost. Sites are immutable.
        self._sites: OrderedDict[tuple[str, str], tuple[Site, ...]] = OrderedDict()
        self._text = TextOperators()  # a text strategy (a SKILL.md): node/mutators/text.py

    def sites(self, path: str, text: str) -> tuple[Site, ...]:
        key = (path, text)
        found = self._sites.get(key)
        if found is None:
            found = self._sites[key] = tuple(collect_sites(path, text))
            while len(self._sites) > SITE_CACHE:
                self._sites.popitem(last=False)
        self._sites.move_to_end(key)
        return found

    async def propose(self, context: MutationContext) -> Proposal:
        """`propose_now` in a worker thread (base.in_worker): a few milliseconds on a bundled
        strategy, seconds on a large one."""
        return await in_worker(self.propose_now, context)

    def propose_now(self, context: MutationContext) -> Proposal:
        """The same proposal, synchronously: pure CPU work."""
        if context.problem.runner is not None:  # a text strategy: sentence/bullet operators
            return self._text.propose(context)
        if context.search is not None and context.plan is None:  # a family picks (search.py)
            return context.search.propose(context, self.propose_now)
        paths = sorted(
            path
            for path in context.best_files
            if path.endswith(".py") and path in context.problem.mutable
        )
        pools: Pools = {kind: [] for kind in OPERATOR_KINDS}
        for path in paths:
            for site in self.sites(path, context.best_files[path]):
                if context.avoids(OPERATIONS_OF[site.kind], site.site):
                    continue  # it crashes, or the package fixed it
                if context.plan is None or _planned(site, context.plan):
                    pools[site.kind].append(site)
        if context.plan is not None and not any(pools.values()):
            plan = context.plan
            raise MutationFailed(f"no site for the planned change {plan.change_class}")
        if not any(pools.values()):
            raise MutationFailed("no mutation site in the strategy", retryable=False)
        if context.plan is None:
            weights = {kind: _weight(context.kind_weights, kind) for kind in OPERATOR_KINDS}
        else:
            weights = dict.fromkeys(OPERATOR_KINDS, 1.0)
        if not any(pools[kind] and weights[kind] > 0 for kind in OPERATOR_KINDS):
            raise MutationFailed("every mutation kind with a site has weight 0", retryable=False)
        # A weight of 1.0 is no prior; with none left the draw is exactly the unweighted one.
        classes = {
            cls: _weight(context.class_weights, cls)
            for cls in context.class_weights
            if context.plan is None and _weight(context.class_weights, cls) != 1.0
        }
        structural = context.structural and context.plan is None
        repeat: Proposal | None = None
        for attempt in range(MAX_ATTEMPTS):
            drawn = None
            # Structural combinations get the first half of the attempts, single changes the rest.
            if structural and attempt < MAX_ATTEMPTS // 2:
                changes = _draw_structural(pools, weights, classes, context.rng)
            else:
                want = None if context.plan is None else context.plan.qualifier
                drawn = _draw(pools, weights, classes, context.rng, set(), want)
                changes = [] if drawn is None else [drawn]
            if not changes:
                break
            files = _apply(context.best_files, [change for _, change in changes])
            proposal = None if files is None else _proposal(context, files, changes, len(paths) > 1)
            # A change no record holds (a diff of a 200 KB line) was refused by the loop, and
            # drawn again: never offered, as a change that does not parse (cf. model.py).
            if proposal is not None and len(proposal.diff) <= MAX_SOURCE:
                if not any(tried.strategy == files for tried in context.recent):
                    return proposal
                repeat = repeat or proposal
            if drawn is not None:
                # A settled site gives the same change again; a failed one would fail again.
                pools[drawn[0].kind].remove(drawn[0])
        if repeat is not None:
            return repeat  # every alternative was tried recently (or failed): repeat one
        raise MutationFailed("no valid mutation site", retryable=context.plan is not None)


def _planned(site: Site, plan: PlannedChange) -> bool:
    """A site that can make the planned change: its class, at a planned site, and of the
    planned qualifier when the site knows it before the draw (else `_draw` draws for it)."""
    return (
        OPERATIONS_OF[site.kind] == plan.operation
        and site.affordance == plan.affordance
        and (not plan.sites or site_matches(site.site, plan.sites))
        and (plan.qualifier is None or site.qualifier in (None, plan.qualifier))
    )


def _weight(kind_weights: Mapping[str, float], kind: str) -> float:
    weight = kind_weights.get(kind, 1.0)
    return weight if math.isfinite(weight) and weight > 0 else 0.0


def _draw(
    pools: Pools,
    weights: Mapping[str, float],
    classes: Mapping[str, float],
    rng: random.Random,
    used_families: set[str],
    want: Qualifier | None = None,
) -> Drawn | None:
    """A weighted kind, then a site of it weighted by its cell (class and qualifier, when the
    site knows it: playbook.class_weights), else its class; sites with nothing left to draw
    are dropped. Without class weights this is a uniform site of the kind. `want`: only a
    change of this qualifier (a planned change's), drawn again a few times at a site that
    decides it in the draw."""
    while True:
        kinds = [
            kind
            for kind in OPERATOR_KINDS
            if pools[kind] and weights[kind] > 0 and FAMILIES[kind] not in used_families
        ]
        if not kinds:
            return None
        if classes:
            site_weights = {k: [_site_weight(classes, s) for s in pools[k]] for k in kinds}
            kind_weights = [weights[k] * sum(site_weights[k]) / len(pools[k]) for k in kinds]
            if not any(kind_weights):
                return None
            kind = rng.choices(kinds, kind_weights)[0]
            site = rng.choices(pools[kind], site_weights[kind])[0]
        else:
            kind = rng.choices(kinds, [weights[kind] for kind in kinds])[0]
            site = rng.choice(pools[kind])
        change = site.draw(rng)
        for _ in range(WANT_DRAWS if want is not None and site.qualifier is None else 0):
            if change is None or change.qualifier == want:
                break
            change = site.draw(rng)
        if change is not None and (want is None or change.qualifier == want):
            return site, change
        pools[kind].remove(site)


def _site_weight(classes: Mapping[str, float], site: Site) -> float:
    """The site's cell weight when there is one, else its class's (the cell falls back)."""
    cell = site.change_cell
    if cell is not None and cell in classes:
        return classes[cell]
    return classes.get(site.change_class, 1.0)


def _draw_structural(
    pools: Pools, weights: Mapping[str, float], classes: Mapping[str, float], rng: random.Random
) -> list[Drawn]:
    """2-3 non-overlapping changes from different families (the same family if only one has
    sites); a single change when no second one fits."""
    want = rng.choice((2, 3))
    changes: list[Drawn] = []
    families: set[str] = set()
    for _ in range(4 * want):
        if len(changes) >= want:
            break
        drawn = _draw(pools, weights, classes, rng, families)
        if drawn is None and len(changes) < 2:
            drawn = _draw(pools, weights, classes, rng, set())
        if drawn is None:
            break
        site, change = drawn
        if not any(_overlap(change, other) for _, other in changes):
            changes.append(drawn)
            families.add(FAMILIES[site.kind])
    return changes


def _overlap(first: Change, second: Change) -> bool:
    return first.path == second.path and any(
        a.start < b.end and b.start < a.end for a in first.edits for b in second.edits
    )


def _apply(best_files: Mapping[str, str], changes: list[Change]) -> dict[str, str] | None:
    """The full mutable files after the changes, or None if a changed file no longer parses."""
    files = dict(best_files)
    for path in sorted({change.path for change in changes}):
        data = files[path].encode("utf-8")
        edits = [edit for change in changes if change.path == path for edit in change.edits]
        for edit in sorted(edits, key=lambda edit: edit.start, reverse=True):
            data = data[: edit.start] + edit.text.encode("utf-8") + data[edit.end :]
        text = data.decode("utf-8")
        # Past the record's bound (a longer value in a file at it) the loop refused it.
        if text == best_files[path] or len(text) > MAX_SOURCE or parse(text) is None:
            return None
        files[path] = text
    return files


def _proposal(
    context: MutationContext, files: dict[str, str], drawn: list[Drawn], multi_file: bool
) -> Proposal:
    # Canonical order, so one combination always has one structural kind name.
    drawn = sorted(drawn, key=lambda pair: OPERATOR_KINDS.index(pair[1].kind))
    changes = [change for _, change in drawn]
    descriptions = [
        f"{change.description} ({change.path + ' ' if multi_file else ''}line {change.line})"
        for change in changes
    ]
    kinds = [change.kind for change in changes]
    if len(changes) == 1:
        kind, hypothesis = kinds[0], HYPOTHESES[kinds[0]]
    else:
        kind = "structural:" + "+".join(kinds)
        reasons = "; ".join(dict.fromkeys(HYPOTHESES[k] for k in kinds))
        hypothesis = f"{STRUCTURAL_HYPOTHESIS} ({reasons})"
    described = tuple(
        Described(operation=OPERATIONS_OF[site.kind], affordance=site.affordance, site=site.site,
                  qualifier=change.qualifier)
        for site, change in drawn
    )
    plan = context.plan
    return Proposal(
        files=files,
        diff=make_diff(context.best_files, files),
        mutation_kind=kind,
        description="; ".join(descriptions),
        hypothesis=hypothesis if plan is None or not plan.text else plan.text,
        changes=described,
        applied=applied_patterns(context, described),
        hypothesis_id=None if plan is None else plan.hypothesis_id,
    )
