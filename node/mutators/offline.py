"""The default offline mutator: one AST-located edit to the strategy, drawn with the context rng."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

import trio

from node.mutators.base import MutationContext, MutationFailed, Proposal
from node.mutators.operators import FAMILIES, HYPOTHESES, OPERATOR_KINDS, Change, Site
from node.mutators.patch import make_diff
from node.mutators.sites import collect_sites
from node.mutators.source import parse

__all__ = ["OPERATOR_KINDS", "OfflineMutator"]

# Bounds the search for a change that parses and is not one of the recent attempts.
MAX_ATTEMPTS = 32
STRUCTURAL_HYPOTHESIS = "the search has plateaued; a bigger change across families may escape it"

Pools = dict[str, list[Site]]


class OfflineMutator:
    """Perturbs, zeroes, prunes, swaps, rescales and toggles literals: no network, no cost.

    Deterministic: the same context and `context.rng` state give the same proposal.
    """

    name = "offline"

    async def propose(self, context: MutationContext) -> Proposal:
        proposal = self.propose_now(context)
        await trio.lowlevel.checkpoint()
        return proposal

    def propose_now(self, context: MutationContext) -> Proposal:
        """The same proposal, synchronously: pure CPU work of a few milliseconds."""
        paths = sorted(
            path
            for path in context.best_files
            if path.endswith(".py") and path in context.problem.mutable
        )
        pools: Pools = {kind: [] for kind in OPERATOR_KINDS}
        for path in paths:
            for site in collect_sites(path, context.best_files[path]):
                pools[site.kind].append(site)
        if not any(pools.values()):
            raise MutationFailed("no mutation site in the strategy", retryable=False)
        weights = {kind: _weight(context.kind_weights, kind) for kind in OPERATOR_KINDS}
        if not any(pools[kind] and weights[kind] > 0 for kind in OPERATOR_KINDS):
            raise MutationFailed("every mutation kind with a site has weight 0", retryable=False)
        repeat: Proposal | None = None
        for attempt in range(MAX_ATTEMPTS):
            drawn = None
            # Structural combinations get the first half of the attempts, single changes the rest.
            if context.structural and attempt < MAX_ATTEMPTS // 2:
                changes = _draw_structural(pools, weights, context.rng)
            else:
                drawn = _draw(pools, weights, context.rng, set())
                changes = [] if drawn is None else [drawn[1]]
            if not changes:
                break
            files = _apply(context.best_files, changes)
            if files is not None:
                proposal = _proposal(context.best_files, files, changes, multi_file=len(paths) > 1)
                if not any(tried.strategy == files for tried in context.recent):
                    return proposal
                repeat = repeat or proposal
            if drawn is not None:
                # A settled site gives the same change again; a failed one would fail again.
                pools[drawn[0].kind].remove(drawn[0])
        if repeat is not None:
            return repeat  # every alternative was tried recently (or failed): repeat one
        raise MutationFailed("no valid mutation site", retryable=False)


def _weight(kind_weights: Mapping[str, float], kind: str) -> float:
    weight = kind_weights.get(kind, 1.0)
    return weight if math.isfinite(weight) and weight > 0 else 0.0


def _draw(
    pools: Pools, weights: Mapping[str, float], rng: random.Random, used_families: set[str]
) -> tuple[Site, Change] | None:
    """Weighted kind, then a uniform site of it; sites with nothing left to draw are dropped."""
    while True:
        kinds = [
            kind
            for kind in OPERATOR_KINDS
            if pools[kind] and weights[kind] > 0 and FAMILIES[kind] not in used_families
        ]
        if not kinds:
            return None
        kind = rng.choices(kinds, [weights[kind] for kind in kinds])[0]
        site = rng.choice(pools[kind])
        change = site.draw(rng)
        if change is not None:
            return site, change
        pools[kind].remove(site)


def _draw_structural(
    pools: Pools, weights: Mapping[str, float], rng: random.Random
) -> list[Change]:
    """2-3 non-overlapping changes from different families (the same family if only one has
    sites); a single change when no second one fits."""
    want = rng.choice((2, 3))
    changes: list[Change] = []
    families: set[str] = set()
    for _ in range(4 * want):
        if len(changes) >= want:
            break
        drawn = _draw(pools, weights, rng, families)
        if drawn is None and len(changes) < 2:
            drawn = _draw(pools, weights, rng, set())
        if drawn is None:
            break
        site, change = drawn
        if not any(_overlap(change, other) for other in changes):
            changes.append(change)
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
        if text == best_files[path] or parse(text) is None:
            return None
        files[path] = text
    return files


def _proposal(
    best_files: Mapping[str, str], files: dict[str, str], changes: list[Change], multi_file: bool
) -> Proposal:
    # Canonical order, so one combination always has one structural kind name.
    changes = sorted(changes, key=lambda change: OPERATOR_KINDS.index(change.kind))
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
    return Proposal(
        files=files,
        diff=make_diff(best_files, files),
        mutation_kind=kind,
        description="; ".join(descriptions),
        hypothesis=hypothesis,
    )
