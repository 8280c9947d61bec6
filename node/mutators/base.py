"""The mutator role: given the current best strategy and what was tried, propose ONE change."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from node.llm import Usage
from research_dag import Experiment, Problem


@dataclass(frozen=True)
class Proposal:
    """One candidate change: the full new mutable files plus how it differs from the parent."""

    files: dict[str, str]  # every mutable file, new content (unchanged ones included)
    diff: str  # unified diff parent -> candidate
    mutation_kind: str  # e.g. "perturb_constant", "prune_element", or an LLM-chosen kind
    description: str  # one line: what changed ("WEIGHTS[3]: 0.5 -> 0.0")
    hypothesis: str = ""  # why it might help
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class MutationContext:
    """Everything a mutator may read. `recent` holds the latest attempts, newest last."""

    problem: Problem
    best_files: dict[str, str]
    best_score: float | None
    recent: tuple[Experiment, ...] = ()
    # Prior weight per mutation kind (from the playbook / this problem's history); missing
    # kinds get weight 1.0.
    kind_weights: dict[str, float] = field(default_factory=dict)
    # Hypotheses / playbook text an LLM may read (already rendered, short).
    guidance: tuple[str, ...] = ()
    # Plateau: no finding in K tries -> ask for a bigger, structural change.
    structural: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(0))


class MutationFailed(Exception):
    """The mutator could not produce a usable change (malformed reply, refusal, no site).

    It is recorded by the loop as a failed attempt, never a crash of the loop.
    """

    def __init__(self, reason: str, usage: Usage | None = None, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage or Usage()
        self.retryable = retryable


class Mutator(Protocol):
    name: str

    async def propose(self, context: MutationContext) -> Proposal: ...
