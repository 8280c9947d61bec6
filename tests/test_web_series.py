"""The dashboard's read model at scale and out of order: the chart of 100,000 attempts is
downsampled to a bounded set that keeps every kept attempt and each node's extremes; the pass
rates read a bounded sample; a parent stored after its child still reaches the page."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from node.store import RecordStore
from node.web import DashboardSource
from node.web.series import MAX_POINTS, RATE_BUCKETS, RATE_SAMPLE, pass_rates, pick
from node.web.state import DashboardState, Entry, Status
from research_dag import Experiment, Header, Outcome
from tests.web_run import real_run

STATUSES: list[Status] = ["discard", "discard", "discard", "failed", "unverified", "keep"]


def _entries(count: int, authors: int, seed: int) -> list[Entry]:
    rng = random.Random(seed)
    entries = []
    for n in range(count):
        status = rng.choice(STATUSES) if n else "baseline"
        score = None if status == "failed" else rng.random()
        header = Header(f"{n:064x}", "experiment", n, f"a{n % authors}", "p", None, score)
        entries.append(Entry(header, n, status, n % authors))
    return entries


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 30_000), st.integers(1, 8), st.integers(0, 1000))
def test_downsampling_is_bounded_and_keeps_what_matters(count: int, authors: int, seed: int
                                                         ) -> None:
    entries = _entries(count, authors, seed)
    chosen = pick(entries)
    kept = {n for n, e in enumerate(entries) if e.status in ("keep", "baseline")}
    assert chosen == sorted(set(chosen)) and kept <= set(chosen)
    assert len(chosen) <= max(count if count <= MAX_POINTS else MAX_POINTS + len(kept), 0)
    if count <= MAX_POINTS:
        assert chosen == list(range(count))
    scored = [n for n, e in enumerate(entries) if e.header.score is not None]
    if scored:  # the lowest and highest score stay drawn
        low = min(scored, key=lambda n: entries[n].header.score or 0.0)
        high = max(scored, key=lambda n: entries[n].header.score or 0.0)
        assert {entries[low].header.score, entries[high].header.score} <= {
            entries[n].header.score for n in chosen}


def test_a_hundred_thousand_attempts_draw_a_few_thousand_points_and_read_a_sample() -> None:
    entries = _entries(100_000, 4, 0)
    assert len(pick(entries)) <= MAX_POINTS + sum(e.status == "keep" for e in entries)
    asked: list[str] = []

    def items_of(ids: list[str]) -> dict[str, dict[str, bool]]:
        asked.extend(ids)
        return {i: {"ok": int(i, 16) % 2 == 0} for i in ids}

    rates = pass_rates(entries, items_of)
    assert len(asked) <= RATE_BUCKETS * RATE_SAMPLE and rates["sampled"]
    assert len(rates["t"]) == RATE_BUCKETS
    assert all(0.0 <= r <= 1.0 for r in rates["items"]["ok"] if r is not None)


def test_a_parent_stored_after_its_child_reaches_the_page(tmp_path: Path) -> None:
    real_run(tmp_path, iterations=2)
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        state = DashboardState(DashboardSource(store=lambda: store, refresh_s=0.0))
        state.refresh()
        (log,) = state.logs.values()
        last = log.entries[-1].header
        held = store.get(last.id)
        assert isinstance(held, Experiment)
        parent = held.model_copy(update={"description": "arrives late", "created_ms": 7})
        child = held.model_copy(update={"parent": parent.id, "description": "arrives first",
                                        "outcome": Outcome(status="ok", score=0.1)})
        store.add(child)  # names its parent: the parent's row exists, not held
        assert state.refresh()
        assert child.id in log.index and parent.id not in log.index
        store.add(parent)  # fills that older row: the count does not add up, all is read
        assert state.refresh()
        assert parent.id in state.logs[log.problem.id].index
