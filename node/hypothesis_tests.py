"""Which open hypotheses one loop tests, and on which iterations: a bounded share of them,
each hypothesis at most its `tries` times from this node, deterministic given the seed."""

from __future__ import annotations

import math
import random
from collections import OrderedDict

from playbook import PLAN, Knowledge, PlannedChange, planned_change
from research_dag import Hypothesis

MAX_PLANS = 4  # hypotheses tried on one targeted iteration before an ordinary proposal


class HypothesisTests:
    """The tests this node has made per hypothesis (the newest `window` hypotheses: each up to
    its plan's last look, an inconclusive plan going on) and the
    ones it set aside (no site for the planned change in the best it had then: a new best may
    have one, so they are set aside for that best only)."""

    def __init__(self, problem_id: str, share: float, seed: int, window: int) -> None:
        self.problem_id = problem_id
        self.share = min(1.0, max(0.0, share))
        # The targeted iterations are spread evenly from a seeded phase.
        self.phase = random.Random(f"{seed}:{problem_id}:hypotheses").random()
        self.window = max(1, window)
        self.tested: OrderedDict[str, int] = OrderedDict()
        self.unworkable: dict[str, str | None] = {}  # hypothesis id -> the best then

    def open(self, knowledge: Knowledge, best: str | None = None) -> list[Hypothesis]:
        """The hypotheses on this problem this node may still test from `best` (the id of
        the strategy it changes), fewest tests first."""
        found = [
            h
            for h in knowledge.hypotheses
            if h.problem == self.problem_id
            and (h.id not in self.unworkable or self.unworkable[h.id] != best)
            and planned_change(h) is not None
            and self.tested.get(h.id, 0) < (PLAN.last(h.tries) if h.tries else 1)
        ]
        found.sort(key=lambda h: (self.tested.get(h.id, 0), -(h.expected_lift or 0.0), h.id))
        return found

    def plans(self, knowledge: Knowledge, iteration: int, best: str | None = None
              ) -> list[PlannedChange]:
        """The planned changes to try on this iteration, in order of preference: none unless
        it is one of the `share` of iterations and a hypothesis is open."""
        if self.share <= 0 or not knowledge.hypotheses:
            return []
        before = math.floor(iteration * self.share + self.phase)
        if math.floor((iteration + 1) * self.share + self.phase) == before:
            return []
        plans = (planned_change(h) for h in self.open(knowledge, best)[:MAX_PLANS])
        return [plan for plan in plans if plan is not None]

    def count(self, hypothesis_id: str) -> None:
        self.tested[hypothesis_id] = self.tested.get(hypothesis_id, 0) + 1
        self.tested.move_to_end(hypothesis_id)
        while len(self.tested) > self.window:
            self.tested.popitem(last=False)

    def set_aside(self, hypothesis_id: str, best: str | None = None) -> None:
        self.unworkable[hypothesis_id] = best
        while len(self.unworkable) > self.window:  # the oldest first
            del self.unworkable[next(iter(self.unworkable))]
