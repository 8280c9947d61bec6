"""What a research loop remembers of its attempts: the outcomes of candidates tried (a repeat is
answered from memory), the working set of recent attempts, the search model's data, and the
store it records to and resumes from."""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import trio

from node.hypothesis_tests import HypothesisTests
from node.loop_config import Evaluate, LoopConfig, Seal
from node.mutators import Search, in_worker
from node.store import RecordStore
from research_dag import Experiment, Outcome, Problem, Transcript
from sandbox import Evaluated

MAX_QUEUED = 65_536  # experiments waiting for the search's `_take_in` (references: a few MB)
MAX_QUEUED_CHARS = 64 * 1024 * 1024  # ... and their strategies' characters (each up to 4 MB)


def strategy_digest(files: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


class LoopMemory:
    """The memory half of `ResearchLoop` (node/loop.py), which sets every attribute below."""

    problem: Problem
    evaluate_fn: Evaluate
    store: RecordStore
    config: LoopConfig
    on_record: Callable[[Experiment | Transcript], None] | None
    trusted: Callable[[Experiment], bool]
    informs: Callable[[Experiment], bool]
    seal: Seal
    search: Search | None
    _last_ms: int
    _experiments: deque[Experiment]
    _count: int
    _outcomes: OrderedDict[str, Outcome]
    _known: OrderedDict[str, None]
    _best: Experiment | None
    _baseline: Experiment | None
    _tests: HypothesisTests
    _repeat: bool
    _transcript: Transcript | None
    _for_search: list[tuple[bool, Experiment]]  # (data, or held until its author vouches)
    dropped_offers: int = 0  # offers past MAX_QUEUED: the search's loss
    _queued_chars: int = 0  # the strategies' characters in `_for_search`

    if TYPE_CHECKING:  # node/loop.py

        def _better(self, experiment: Experiment) -> bool: ...

    def observe(self, experiment: Experiment) -> None:
        """Take in an experiment of this problem as the search's data (a peer's too), at the
        loop's next `_take_in`."""
        self._queue_for_search(True, experiment, offered=False)

    def offer_data(self, experiment: Experiment) -> None:
        """A peer's experiment: the search's data if `informs` accepts it, else held until its
        author vouches (a replay of a later claim of theirs reproduced); at the loop's next
        `_take_in`."""
        self._queue_for_search(self.informs(experiment), experiment)

    def _queue_for_search(self, data: bool, experiment: Experiment, offered: bool = True
                          ) -> None:
        """Only the loop's own task touches its search, in a worker thread (`_take_in`, a
        proposal: node.mutators.in_worker), one step after another: taking in a large
        strategy costs seconds (its shape: 2.3 s for 250 KB), which on the trio thread left
        pings, gossip and intake unanswered that long, and intake offering from the trio
        thread while a worker used the search counted an experiment twice in its memory
        (whose check-then-record is not atomic). At most MAX_QUEUED wait, and MAX_QUEUED_CHARS
        of strategies (a step may take a minute while intake queues 256 KB strategies); past
        that an offer is the search's loss (counted; the experiment is stored, and a restart's
        load reads it)."""
        if self.search is None or experiment.problem != self.problem.id:
            return
        size = sum(map(len, experiment.strategy.values()))
        if offered and (len(self._for_search) >= MAX_QUEUED
                        or (self._queued_chars + size > MAX_QUEUED_CHARS and self._for_search)):
            self.dropped_offers += 1  # never our own attempt (`observe`): one a step
            return
        self._for_search.append((data, experiment))
        self._queued_chars += size

    async def _take_in(self) -> None:
        """What was queued for the search, in order, in a worker thread."""
        batch, self._for_search, self._queued_chars = self._for_search, [], 0
        if batch:
            await in_worker(self._take_now, batch)

    def _take_now(self, batch: list[tuple[bool, Experiment]]) -> None:
        search = self.search
        assert search is not None
        for data, experiment in batch:
            if data:
                search.observe(experiment)
            else:
                search.hold(experiment)

    async def _evaluate(self, files: Mapping[str, str]) -> Outcome:
        """The candidate's outcome; a model-backed one's transcript waits in `_transcript` for
        the experiment made next (`_experiment`, `_record`)."""
        self._transcript = None
        self._repeat = True
        digest = strategy_digest(files)
        cached = self._outcomes.get(digest)
        # A model-backed candidate is evaluated again (the gateway's cache answers its calls):
        # each experiment links the transcript of its own evaluation.
        if cached is not None and cached.status != "timeout" and self.problem.model is None:
            return cached
        self._repeat = cached is not None
        result = await trio.to_thread.run_sync(self.evaluate_fn, files, abandon_on_cancel=True)
        outcome = result.outcome if isinstance(result, Evaluated) else result
        if isinstance(result, Evaluated):
            mine = result.transcript.model_copy(update={"author": self.config.author})
            self._transcript = self.seal(mine)
        self._remember_outcome(digest, outcome, replace=True)
        return outcome

    def _remember_outcome(self, digest: str, outcome: Outcome, replace: bool = False) -> None:
        if replace or digest not in self._outcomes:
            self._outcomes[digest] = outcome
        self._outcomes.move_to_end(digest)
        while len(self._outcomes) > max(1, self.config.window):
            self._outcomes.popitem(last=False)

    def _hold(self, experiment: Experiment, now: bool = False) -> None:
        """Count an attempt into the working set (the oldest beyond the window leave it); the
        search takes it in `now` (in the loop's worker thread) or at the next `_take_in`."""
        self._experiments.append(experiment)
        if now:
            self._take_now([(True, experiment)])
        else:
            self.observe(experiment)
        self._count += 1
        self._known[experiment.id] = None
        while len(self._known) > max(1, self.config.window):
            self._known.popitem(last=False)

    async def _record(self, experiment: Experiment) -> None:
        transcript, self._transcript = self._transcript, None
        if transcript is not None and experiment.transcript == transcript.id:
            await trio.to_thread.run_sync(self.store.add, transcript)  # before what names it
            if self.on_record:
                self.on_record(transcript)
        await trio.to_thread.run_sync(self.store.add, experiment)
        self._hold(experiment)
        await self._take_in()  # before the step reads the search (`rejected`)
        if self.on_record:
            self.on_record(experiment)

    async def _load(self) -> None:
        """The history, loaded in a worker thread, the search taking it in as it goes; then
        the offers queued meanwhile, after it (a peer's child after its parent)."""
        await in_worker(self._load_history)
        await self._take_in()

    def _load_history(self) -> None:
        # Hypotheses in the store are not read here: a peer's are never used, and this node's
        # own reach the loop through `knowledge` (docs/protocol.md, "Derived records").
        for record in self.store.iter_records(kind="experiment", problem=self.problem.id):
            if not isinstance(record, Experiment):
                continue
            if record.author == self.config.author:
                self._last_ms = max(self._last_ms, record.created_ms)
                if record.hypothesis_id is not None:
                    self._tests.count(record.hypothesis_id)
            if not self.trusted(record):
                if self.search is not None and record.problem == self.problem.id:
                    self._take_now([(self.informs(record), record)])
                continue
            self._hold(record, now=True)
            self._remember_outcome(strategy_digest(record.strategy), record.outcome)
            if record.parent is None and self._baseline is None:
                self._baseline = record
            if self._better(record):
                self._best = record

    def _tried(self, files: Mapping[str, str]) -> bool:
        """Was this candidate tried already (by us, or a peer whose attempt we hold)?"""
        known = self._outcomes.get(strategy_digest(files))
        return known is not None and known.status != "timeout"
