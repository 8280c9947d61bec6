"""The problems a node holds for others: bounded. Every Problem is held whole in memory for good
(the DAG's "few, asked for often"), read back at every start, and its files count in memory at
their full size while the store keeps them deflated: a stranger's package of 3 MiB of zeros
cost 3 MiB of memory for 32 KiB of disk, and problem ids are free, so a stranger posting
problems could exhaust every node's memory, again at each restart (a red team, 2026-12-08).

So a node takes strangers' problems only while those it holds stay within a count and a size
(`NodeConfig.max_problems_held`, `max_problem_bytes`); past them a new one is dropped (reason
`catalogue`), its id remembered (bounded) so that sync does not fetch it again and again. Its
own problems and those it was told to join by id always come in. Holding the catalogue full
is cheaper than it was to make a node run out of memory, and it is visible (`swarm status`);
docs/security.md, "Memory a stranger can make a node hold"."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Container, Iterable

from research_dag import Problem

MAX_PROBLEMS_HELD = 65_536  # strangers' problems (~4 KB of memory each without their files)
MAX_PROBLEM_BYTES = 1 << 30  # their memory, files counted at full size
DECLINED_IDS = 16_384  # declined problem ids remembered (sync does not fetch them again)
OVERHEAD_BYTES = 4_096  # a held Problem's objects besides its files and statement (measured)

_log = logging.getLogger(__name__)


def held_bytes(problem: Problem) -> int:
    """What holding `problem` costs in memory, about: its files and statement at full size."""
    return (OVERHEAD_BYTES + sum(len(content) for content in problem.files.values())
            + len(problem.statement) + len(problem.name))


class Catalogue:
    """Counts the strangers' problems held and decides whether one more fits."""

    def __init__(self, me: str, chosen: Container[str], held: Iterable[Problem],
                 max_count: int = MAX_PROBLEMS_HELD, max_bytes: int = MAX_PROBLEM_BYTES
                 ) -> None:
        self.me = me
        self.chosen = chosen
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.count = 0
        self.bytes = 0
        self._declined: OrderedDict[str, None] = OrderedDict()
        self.full = False
        self._quiet_until = 0.0  # the next "catalogue full" warning, not before
        for problem in held:
            self.add(problem)

    def exempt(self, problem: Problem) -> bool:
        return problem.author == self.me or problem.id in self.chosen

    def admits(self, problem: Problem, pending: tuple[int, int] = (0, 0)) -> bool:
        """Whether `problem` fits beside those held and `pending` (count, bytes: a batch's
        problems admitted and being stored; a problem is counted once stored, or a cancelled
        intake counted what it never stored); if not, it is declined (remembered, bounded),
        logged at most once a minute."""
        if self.exempt(problem):
            return True
        count = self.count + pending[0]
        size = self.bytes + pending[1] + held_bytes(problem)
        fits = count < self.max_count and size <= self.max_bytes
        if not fits:
            self._declined[problem.id] = None
            while len(self._declined) > DECLINED_IDS:
                self._declined.popitem(last=False)
            if time.monotonic() >= self._quiet_until:
                self._quiet_until = time.monotonic() + 60.0
                _log.warning(
                    "this node holds %d problems of others (%d MiB in memory): new ones are not"
                    " taken (drop reason `catalogue`); join one by id with `swarm join"
                    " --problems ID`", self.count, self.bytes >> 20)
        self.full = not fits
        return fits

    def add(self, problem: Problem) -> None:
        """Count a problem taken in (stored and indexed)."""
        if not self.exempt(problem):
            self.count += 1
            self.bytes += held_bytes(problem)

    def __contains__(self, record_id: object) -> bool:
        """Was a problem of this id declined (recently)? Sync does not fetch it again."""
        return record_id in self._declined
