"""A record's `created_ms` is its author's clock, and a stranger's clock may say anything: the
end of time (2^63 - 1), 0, or just before a record it cites. A red team (2026-12-08) showed
what that bought: a flood `swarm gc` never expired and that counted as every problem's newest,
so `--keep-last` dropped the node's own attempts instead; tests dated 0 that decided a
hypothesis before anyone tested it; children taken in before a parent dated late, skipping
intake's check against it. The class is closed where records come in: nothing dated more
than 10 minutes past the receiver's clock is taken (yet), no experiment dated more than an hour
before what it cites, retention counts a record dated past any clock as old, and a sync batch
is ordered by what cites what, not by time (docs/protocol.md section 5, "Time")."""

from __future__ import annotations

import random
from pathlib import Path

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from node.identity import Identity, sign_record
from node.intake import MAX_AHEAD_MS, MAX_SKEW_MS
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.net.sync import _parents_first
from node.retention import Retention, plan
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Experiment, Metric, Outcome, Problem, Record

MAX_MS = 2**63 - 1
DAY_MS = 86_400_000
NOW_MS = 1_765_000_000_000
ME = Identity.from_seed(b"\x51" * 32)
POSER = Identity.from_seed(b"\x52" * 32)
PEER = Identity.from_seed(b"\x53" * 32)


def problem(name: str = "clock", at: int = NOW_MS - 40 * DAY_MS) -> Problem:
    made = sign_record(Problem(
        name=name, statement="optimise", metric=Metric(name="score", direction="maximize"),
        mutable=["strategy.py"], files={"strategy.py": b"def solve(inputs):\n    return 1\n"},
        author=POSER.peer_id, created_ms=at), POSER)
    assert isinstance(made, Problem)
    return made


PROBLEM = problem()


def experiment(tag: str, parent: Experiment | None, score: float | None, at: int,
               author: Identity, of: Problem = PROBLEM) -> Experiment:
    made = sign_record(Experiment(
        problem=of.id, parent=None if parent is None else parent.id,
        strategy={"strategy.py": f"# {tag}\n"},
        outcome=Outcome(status="ok", score=score) if score is not None
        else Outcome(status="crash"),
        mutation_kind="baseline" if parent is None else "perturb", author=author.peer_id,
        created_ms=at), author)
    assert isinstance(made, Experiment)
    return made


def _no_evaluator(problem: Problem) -> None:
    raise AssertionError("this node researches nothing")


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def node_at(network: object, store: RecordStore, clock: Clock) -> SwarmNode:
    return SwarmNode(ME, network, store, _no_evaluator,  # type: ignore[arg-type]
                     OfflineMutator(), NodeConfig(problems=()), now_ms=clock)


# ----- retention ------------------------------------------------------------------------------

def _history() -> tuple[Experiment, Experiment, list[Experiment], list[Experiment]]:
    """Our baseline and best, our 20 dead ends (crashes: no claim), and a stranger's 20 crashes
    from fresh identities dated at the end of time (stored before intake refused such dates)."""
    old = NOW_MS - 30 * DAY_MS
    baseline = experiment("baseline", None, 1.0, old, ME)
    best = experiment("best", baseline, 2.0, old + 1, ME)
    ours = [experiment(f"ours {n}", best, None, NOW_MS - DAY_MS + n, ME) for n in range(20)]
    flood = [experiment(f"flood {n}", baseline, None, MAX_MS,
                        Identity.from_seed(bytes([0x60 + n]) * 32)) for n in range(20)]
    return baseline, best, ours, flood


def test_gc_keep_days_lets_a_flood_dated_at_the_end_of_time_go(tmp_path: Path) -> None:
    baseline, best, ours, flood = _history()
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        store.add_many([PROBLEM, baseline, best, *flood, *ours])
        chosen = plan(store.load_dag(cache=4), ME.peer_id, Retention(keep_days=7),
                      NOW_MS + 30 * DAY_MS)
    dropped = set(chosen.drop)
    assert {e.id for e in ours} <= dropped  # a month-old dead end goes, as before
    assert {e.id for e in flood} <= dropped  # and so does a record dated past any clock
    assert best.id not in dropped and baseline.id not in dropped


def test_gc_keep_last_keeps_the_nodes_own_newest_not_a_future_dated_flood(
    tmp_path: Path,
) -> None:
    baseline, best, ours, flood = _history()
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        store.add_many([PROBLEM, baseline, best, *flood, *ours])
        chosen = plan(store.load_dag(cache=4), ME.peer_id, Retention(keep_last=20), NOW_MS)
    dropped = set(chosen.drop)
    assert not {e.id for e in ours} & dropped
    assert {e.id for e in flood} <= dropped


# ----- intake: ahead of our clock, and before what it cites ----------------------------------

async def test_a_record_dated_past_our_clock_waits_for_its_time_and_then_comes(
    tmp_path: Path,
) -> None:
    """Not taken while dated more than MAX_AHEAD_MS ahead (counted "ahead", its author not
    charged: an honest clock may run fast), not remembered: sync brings it once due."""
    clock = Clock(NOW_MS)
    baseline = experiment("baseline", None, 1.0, NOW_MS, PEER)
    early = experiment("early", baseline, 2.0, NOW_MS + MAX_AHEAD_MS + 1, PEER)
    at_bound = experiment("at the bound", baseline, 3.0, NOW_MS + MAX_AHEAD_MS, PEER)
    hub = MemoryHub()
    async with hub.open_node(PEER.peer_id) as server_net, hub.open_node(ME.peer_id) as net:
        with RecordStore.open(tmp_path / "server.sqlite", durable=False) as held, \
                RecordStore.open(tmp_path / "me.sqlite", durable=False) as store:
            held.add_many([PROBLEM, baseline, early, at_bound])
            server = SwarmNode(PEER, server_net, held, _no_evaluator,  # type: ignore[arg-type]
                               OfflineMutator(), NodeConfig(problems=()))
            me = node_at(net, store, clock)
            await net.connect(f"/memory/{server.me}")
            assert await me.sync.sync_with(server.me) == 3
            assert early.id not in me.dag and at_bound.id in me.dag
            assert me.stats.drops.counts["ahead"] == 1 and me.stats.refused == 0
            assert early.id not in me.dropped
            assert me.ledger.standing_of(PEER.peer_id) >= 0
            # Not fetched again before it is due: a peer holding records dated ahead had every
            # node that synced with it decode and check them again on every pass.
            served = server.sync.budget.by_reason()["served"]
            assert await me.sync.sync_with(server.me) == 0
            assert server.sync.budget.by_reason()["served"] == served + 1  # the summary only
            assert me.stats.drops.counts["ahead"] == 1
            clock.now += 2  # its time has come
            assert await me.sync.sync_with(server.me) == 1 and early.id in me.dag


OFFSETS = st.integers(-3 * MAX_SKEW_MS, 3 * MAX_SKEW_MS)


@settings(max_examples=40, deadline=None)
@given(problem_offset=OFFSETS, parent_offset=OFFSETS, cites_parent=st.booleans())
def test_an_experiment_dated_before_what_it_cites_by_more_than_the_skew_is_refused(
    problem_offset: int, parent_offset: int, cites_parent: bool
) -> None:
    """Whatever the dates: taken iff it is not more than MAX_SKEW_MS before each held record
    it cites, and when refused its author is charged (a copy of a peer's find dated 0 took its
    credit; tests dated 0 decided a hypothesis before anyone tested it)."""
    posed = problem(at=NOW_MS + problem_offset)
    baseline = experiment("baseline", None, 1.0, NOW_MS + parent_offset, POSER, posed)
    child = experiment("child", baseline if cites_parent else None, 2.0, NOW_MS, PEER, posed)
    cited = [posed.created_ms] + ([baseline.created_ms] if cites_parent else [])
    expected = all(child.created_ms + MAX_SKEW_MS >= when for when in cited)

    async def main(root: Path) -> None:
        async with MemoryHub().open_node(ME.peer_id) as net:
            with RecordStore.open(root / "me.sqlite", durable=False) as store:
                store.add_many([posed, baseline])  # held (however they are dated)
                me = node_at(net, store, Clock(NOW_MS + 4 * MAX_SKEW_MS))
                assert {posed.id, baseline.id} <= me.dag.ids()
                assert await me.take([child]) == int(expected)
                assert (child.id in me.dag) == expected
                assert me.stats.refused == int(not expected)
                if not expected:
                    assert me.ledger.standing_of(PEER.peer_id) < 0

    import tempfile

    with tempfile.TemporaryDirectory() as root:
        trio.run(main, Path(root))


# ----- sync: what cites what, before time ----------------------------------------------------

@st.composite
def batches(draw: st.DrawFn) -> list[Record]:
    """A problem and a forest of experiments, each dated anything, in any order."""
    count = draw(st.integers(1, 24))
    made: list[Experiment] = []
    for n in range(count):
        parent = draw(st.sampled_from([None, *made])) if made else None
        at = draw(st.sampled_from([0, NOW_MS, MAX_MS, NOW_MS - n, NOW_MS + n]))
        made.append(experiment(str(n), parent, float(n), at,
                               draw(st.sampled_from([ME, PEER, POSER]))))
    records: list[Record] = [PROBLEM, *made]
    random.Random(draw(st.integers(0, 2**16))).shuffle(records)
    return records


@settings(max_examples=60, deadline=None)
@given(batch=batches())
def test_a_sync_batch_is_taken_parents_first_whatever_the_clocks(batch: list[Record]) -> None:
    ordered = _parents_first(batch)
    assert sorted(r.id for r in ordered) == sorted(r.id for r in batch)
    place = {record.id: n for n, record in enumerate(ordered)}
    assert place[PROBLEM.id] == 0
    for record in ordered:
        if isinstance(record, Experiment) and record.parent is not None:
            assert place[record.parent] < place[record.id]


async def test_a_child_dated_before_its_parent_in_one_batch_is_still_checked_against_it(
    tmp_path: Path,
) -> None:
    """Within the skew a child may be dated before its parent; taken in first (by time), its
    parent was "not held" and the rule that a parent is an experiment of the same problem was
    skipped: stored, its author uncharged."""
    other = problem("other")
    elsewhere = experiment("elsewhere", None, 1.0, NOW_MS, POSER, other)
    child = sign_record(Experiment(
        problem=PROBLEM.id, parent=elsewhere.id, strategy={"strategy.py": "x = 9\n"},
        outcome=Outcome(status="ok", score=9.0), mutation_kind="perturb",
        author=PEER.peer_id, created_ms=NOW_MS - MAX_SKEW_MS // 2), PEER)
    async with MemoryHub().open_node(ME.peer_id) as net:
        with RecordStore.open(tmp_path / "me.sqlite", durable=False) as store:
            me = node_at(net, store, Clock(NOW_MS))
            await me.take(_parents_first([PROBLEM, other, child, elsewhere]))
            assert me.stats.refused == 1 and child.id not in me.dag
