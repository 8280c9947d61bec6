"""A loop's proposal work runs off the event loop (node.mutators.in_worker): a large hostile
strategy takes seconds to analyse (a 256 KiB one: 6 s to list its sites, 4 s its affordances),
which on the trio thread left a node's pings, gossip and intake unanswered that long. Intake's
offers wait while the proposal uses the search in its thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from test_search_swarm import peer_attempts

from node.loop import LoopConfig, ResearchLoop
from node.mutators import OfflineMutator
from node.problem import load_package
from node.store import RecordStore
from playbook import Knowledge
from research_dag import DERIVED_AUTHOR, Experiment, Outcome, Pattern
from sandbox import Evaluator, Runtime

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GUARD_S = 30.0  # how long a blocked worker waits for the trio task before the test fails

LIVE = Pattern(mutation_kind="perturb:weight_vector", operation="perturb",
               affordance="weight_vector", text="t", status="live", author=DERIVED_AUTHOR)


def _waits_for_the_event_loop(work: Callable[..., Any], started: threading.Event,
                              release: threading.Event) -> Callable[..., Any]:
    """`work`, first waiting until a trio task releases it: run on the trio thread it would
    wait for a task that cannot run, and fail."""

    def blocked(*args: Any) -> Any:
        started.set()
        if not release.wait(GUARD_S):
            raise AssertionError("the event loop did not run while the proposal was made")
        return work(*args)

    return blocked


@pytest.mark.parametrize("part", ["analysis", "proposal"])
async def test_a_proposal_is_made_off_the_event_loop_and_offers_wait_for_it(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    import node.loop_proposals as proposals

    problem = load_package(EXAMPLES / "finance_factors")
    started, release = threading.Event(), threading.Event()
    with Evaluator(runtime, problem) as evaluator:
        theirs = await peer_attempts(problem, evaluator, tmp_path / "peer.sqlite")
        mutator = OfflineMutator()
        if part == "analysis":  # the static analysis of a new best, when patterns are live
            monkeypatch.setattr(proposals, "strategy_affordances", _waits_for_the_event_loop(
                proposals.strategy_affordances, started, release))
        else:
            monkeypatch.setattr(mutator, "propose_now", _waits_for_the_event_loop(
                mutator.propose_now, started, release))
        with RecordStore.open(tmp_path / "mine.sqlite") as store:
            loop = ResearchLoop(problem, evaluator.evaluate, mutator, store,
                                LoopConfig(iterations=1, seed=2), informs=lambda e: True,
                                knowledge=lambda: Knowledge(patterns=(LIVE,)))
            search = loop.search
            assert search is not None
            await loop.prepare()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(loop.step)
                await trio.to_thread.run_sync(started.wait)
                try:
                    for experiment in theirs:
                        loop.offer_data(experiment)  # intake, on the trio thread
                    taken = [e.id for e in theirs if search.memory.holds(e.id)]
                finally:
                    release.set()
            assert taken == []  # not while the proposal used the search
            assert all(search.memory.holds(e.id) for e in theirs)


async def test_a_models_reply_is_applied_off_the_event_loop(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """An LLM mutator applies, parses and diffs the reply against the best strategy (256 KB
    at most: seconds) in a worker thread."""
    from recorded_llm import Script, message
    from test_llm_mutator import GOOD_REPLY, context, mutator_for

    import node.mutators.llm as llm

    started, release = threading.Event(), threading.Event()
    monkeypatch.setattr(llm, "parse_reply",
                        _waits_for_the_event_loop(llm.parse_reply, started, release))
    proposals = []
    async with mutator_for(Script(message(GOOD_REPLY))) as mutator:

        async def propose() -> None:
            proposals.append(await mutator.propose(context()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(propose)
            await trio.to_thread.run_sync(started.wait)
            release.set()
    assert [p.description for p in proposals] == ["THRESHOLD: 0.5 -> 0.35"]


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 5000), max_size=60), own=st.sets(st.integers(0, 59)))
def test_what_waits_for_the_search_is_bounded_but_never_the_loops_own(
    sizes: list[int], own: set[int]
) -> None:
    """Intake queues offers for the loop's next `_take_in`; a step may take a minute while a
    peer sends 4 MB strategies, so the queue is bounded in characters too (beyond it an offer
    is the search's loss, counted). The loop's own attempts (`observe`) always wait."""
    import node.loop_memory as memory

    problem = load_package(EXAMPLES / "finance_factors")
    loop = ResearchLoop.__new__(ResearchLoop)
    loop.problem, loop.search = problem, object()  # type: ignore[assignment]
    loop._for_search, loop._queued_chars, loop.dropped_offers = [], 0, 0
    loop.informs = lambda experiment: True
    bound = 8000
    offered = kept_own = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memory, "MAX_QUEUED_CHARS", bound)
        for index, size in enumerate(sizes):
            experiment = Experiment(problem=problem.id, strategy={"strategy.py": "x" * size},
                                    outcome=Outcome(status="ok"), created_ms=index)
            if index in own:
                loop.observe(experiment)
                kept_own += 1
            else:
                loop.offer_data(experiment)
                offered += 1
    queued = [experiment for _, experiment in loop._for_search]
    assert sum(1 for e in queued if e.created_ms in own) == kept_own
    offers = [e for e in queued if e.created_ms not in own]
    assert len(offers) + loop.dropped_offers == offered
    largest = max(sizes, default=0)
    assert loop._queued_chars == sum(len(e.strategy["strategy.py"]) for e in queued)
    assert sum(len(e.strategy["strategy.py"]) for e in offers) <= bound + largest
