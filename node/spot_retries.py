"""Claims whose spot check could not run (docs/protocol.md section 9, "Model-backed claims"):
what such a check says (nothing: `Unchecked`), how many times each claim was tried, the round
it may be tried again, and the claims given up after the last attempt.

A spot check that could not ask its model (the provider failed or timed out, the node's model
budget is spent, a checked evaluation ran out of time) checks nothing. Before, the claim then
verified on its replay alone: a liar who edited responses got a matching Verification from a
node that never checked them. Now no Verification is made: the claim stays pending and is
tried again later, a bounded number of times, with a backoff counted in rounds (no sleeps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

MAX_REMEMBERED = 4096  # claims tried or given up, per kind; past it the oldest are forgotten
_Value = TypeVar("_Value")


@dataclass(frozen=True)
class Unchecked:
    """A spot check that did not run: no verdict on the claim, neither match nor mismatch.
    `reason`: `provider` (our model failed or timed out), `budget` (our model budget is
    spent) or `timeout` (a checked evaluation ran out of wall time, even when run again with
    time for its whole fuel: node/model_evaluations.py, PATIENT_WALL_S)."""

    reason: str
    message: str

    def describe(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass
class SpotRetries:
    """Each claim whose spot check could not run gets `attempts` tries in all; after the n-th
    failed one it waits `backoff_rounds * 2**(n-1)` rounds. After the last it is given up: never
    replayed again by this process (it stays pending; peers' votes may still decide it)."""

    attempts: int = 4
    backoff_rounds: int = 2
    _tries: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (failed, due round)
    given_up: dict[str, str] = field(default_factory=dict)  # id -> why (Unchecked.describe)

    def due(self, claim_id: str, now: int) -> bool:
        """May the claim be replayed in round `now` (never tried, or its backoff is over)?"""
        tried = self._tries.get(claim_id)
        return claim_id not in self.given_up and (tried is None or now >= tried[1])

    def failed(self, claim_id: str, now: int, why: Unchecked) -> bool:
        """Note a check of the claim that could not run in round `now`. True when that was its
        last attempt: it is given up."""
        count = self._tries.pop(claim_id, (0, 0))[0] + 1
        if count >= self.attempts:
            self.given_up[claim_id] = why.describe()[:300]
            _trim(self.given_up)
            return True
        self._tries[claim_id] = (count, now + self.backoff_rounds * 2 ** (count - 1))
        _trim(self._tries)
        return False

    def settled(self, claim_id: str) -> None:
        """The claim got a verdict (or was dropped for another reason): forget its tries."""
        self._tries.pop(claim_id, None)

    def tries(self, claim_id: str) -> int:
        """How many checks of the claim could not run so far (given up: `attempts`)."""
        if claim_id in self.given_up:
            return self.attempts
        return self._tries.get(claim_id, (0, 0))[0]


def _trim(entries: dict[str, _Value]) -> None:
    while len(entries) > MAX_REMEMBERED:  # insertion order: the oldest first
        del entries[next(iter(entries))]
