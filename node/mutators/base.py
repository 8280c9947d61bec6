"""The mutator role: given the current best strategy and what was tried, propose ONE change."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import trio

from node.llm import Usage
from playbook import PlannedChange, site_matches
from research_dag import Change, Experiment, Outcome, Problem

MAX_APPLIED = 16  # research_dag's bound on Experiment.applied

_T = TypeVar("_T")
# One loop's proposal work at a time in this process: a simulation runs many nodes' loops in
# one process, and their mutators' work is CPU-bound under the GIL anyway, so nothing is lost
# by it, and no state a library keeps for the process is ever used by two proposals at once.
_PROPOSING = threading.Lock()


def _exclusive(work: Callable[..., _T], *args: object) -> _T:
    with _PROPOSING:
        return work(*args)


async def in_worker(work: Callable[..., _T], *args: object) -> _T:
    """`work(*args)` in a worker thread, one such work at a time in the process: a
    strategy's static analysis and a proposal's operators take seconds on a large hostile
    strategy (a 256 KiB one: 6 s to list its sites, 4 s its affordances), which on the trio
    thread would leave pings, gossip and intake unanswered that long (docs/security.md,
    "Threads"). The caller keeps what `work` touches to it meanwhile (node/loop_memory.py
    defers intake's offers)."""
    return await trio.to_thread.run_sync(_exclusive, work, *args)


@dataclass(frozen=True)
class Proposal:
    """One candidate change: the full new mutable files plus how it differs from the parent."""

    files: dict[str, str]  # every mutable file, new content (unchanged ones included)
    diff: str  # unified diff parent -> candidate
    mutation_kind: str  # e.g. "perturb_constant", "prune_element", or an LLM-chosen kind
    description: str  # one line: what changed ("WEIGHTS[3]: 0.5 -> 0.0")
    hypothesis: str = ""  # why it might help
    usage: Usage = field(default_factory=Usage)
    # The change in the shared vocabulary (research_dag.Change), one per coordinated edit;
    # () when the mutator could not say (the loop then records `changes` as not described).
    changes: tuple[Change, ...] = ()
    applied: tuple[str, ...] = ()  # ids of the live patterns whose class it used
    hypothesis_id: str | None = None  # the hypothesis this proposal tests (a planned change)
    # The operator family it came from (node/mutators/search.py: model, structural, perturb);
    # "" when no family was chosen (an LLM, a planned change, the search switched off).
    family: str = ""


@dataclass(frozen=True)
class MutationContext:
    """Everything a mutator may read. `recent` holds the latest attempts, newest last."""

    problem: Problem
    best_files: dict[str, str]
    best_score: float | None
    # The best's outcome: a text strategy's LLM mutator shows its per-case verdicts and outputs.
    best_outcome: Outcome | None = None
    recent: tuple[Experiment, ...] = ()
    # Prior weight per mutation kind (from the playbook / this problem's history); missing
    # kinds get weight 1.0.
    kind_weights: dict[str, float] = field(default_factory=dict)
    # Prior weight per change class "operation:affordance" (playbook.class_weights: from live
    # patterns, learned here or on other problems); missing classes get weight 1.0. And the
    # patterns behind each class, which a proposal using the class lists in `applied`.
    class_weights: dict[str, float] = field(default_factory=dict)
    class_patterns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # A hypothesis to test: make exactly this change (no other), at one of its sites.
    plan: PlannedChange | None = None
    # Hypotheses / playbook text an LLM may read (already rendered, short).
    guidance: tuple[str, ...] = ()
    # Plateau: no finding in K tries -> ask for a bigger, structural change.
    structural: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    # The problem's search across operator families (node/mutators/search.py), which the
    # offline mutator proposes through; None: its operators exactly as drawn.
    search: FamilySearch | None = None
    # (operation, site) pairs whose changes crash (learned from the records), and the sites
    # the package marks as fixed (problem.toml `fixed_sites`): neither is changed.
    crashing: frozenset[tuple[str, str]] = frozenset()
    fixed_sites: tuple[str, ...] = ()

    def avoids(self, operation: str, site: str) -> bool:
        return (operation, site) in self.crashing or site_matches(site, self.fixed_sites)


class MutationFailed(Exception):
    """The mutator could not produce a usable change (malformed reply, refusal, no site).

    It is recorded by the loop as a failed attempt, never a crash of the loop.
    """

    def __init__(self, reason: str, usage: Usage | None = None, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage or Usage()
        self.retryable = retryable


def applied_patterns(context: MutationContext, changes: tuple[Change, ...]) -> tuple[str, ...]:
    """The patterns behind the classes of `changes`, in order, at most MAX_APPLIED."""
    keys = (key for change in changes for key in (change.change_class, change.change_cell) if key)
    ids = (pid for key in keys for pid in context.class_patterns.get(key, ()))
    return tuple(dict.fromkeys(ids))[:MAX_APPLIED]


class FamilySearch(Protocol):
    """Picks an operator family and makes the change with it; `offline` draws one of the
    offline operators' changes for a context."""

    def propose(
        self, context: MutationContext, offline: Callable[[MutationContext], Proposal]
    ) -> Proposal: ...


class Mutator(Protocol):
    name: str

    async def propose(self, context: MutationContext) -> Proposal: ...
