"""A mutator that replays a fixed script of changes: for replays, demos and tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import trio

from node.mutators.base import MutationContext, MutationFailed, Proposal
from node.mutators.patch import make_diff

# One script step: the new mutable files, a failure to raise, or a function of the context.
ScriptStep = dict[str, str] | MutationFailed | Callable[[MutationContext], dict[str, str]]


class ScriptedMutator:
    """Proposes the scripted candidates in order; past the end it fails (not retryable)."""

    name = "scripted"

    def __init__(self, steps: Iterable[ScriptStep], kinds: Sequence[str] = ()) -> None:
        self.steps = list(steps)
        self.kinds = list(kinds)
        self.calls = 0

    async def propose(self, context: MutationContext) -> Proposal:
        await trio.lowlevel.checkpoint()
        index = self.calls
        self.calls += 1
        if index >= len(self.steps):
            raise MutationFailed("the script is exhausted", retryable=False)
        step = self.steps[index]
        if isinstance(step, MutationFailed):
            raise step
        files = step(context) if callable(step) else step
        kind = self.kinds[index] if index < len(self.kinds) else "scripted"
        return Proposal(
            files=dict(files),
            diff=make_diff(context.best_files, files),
            mutation_kind=kind,
            description=f"scripted step {index + 1}",
        )
