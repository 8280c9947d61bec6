"""Memory a stranger can make a long-running node hold (a red team, 2026-12-08): tables keyed
by peer ids, which are free, must be bounded. Each test fails on the code before its fix."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import node.net.bounded_table
from node.catalogue import Catalogue, held_bytes
from node.identity import Identity, sign_record
from node.net.bounded_table import bound_negatives
from node.net.memory import MemoryHub
from node.net.wire import SyncFetch, encode_sync_request
from node.swarm_intake import TAKE_STEP
from node.trust import MAX_VOTES
from research_dag import Metric, Outcome, Problem, Record, Verification
from tests.test_disk_reserve import status_shown
from tests.test_sync_budget import SERVER, history, open_node

RECEIVER = Identity.from_seed(b"\x44" * 32)
LIAR = Identity.from_seed(b"\x45" * 32)


def refused_by_a_fresh_identity(problem: Problem, n: int) -> Record:
    """A Verification of a problem (not an experiment): valid alone, refused at intake as
    inconsistent and charged to its author, who is new each time; nothing is stored."""
    return sign_record(Verification(experiment=problem.id, outcome=Outcome(status="ok"),
                                    match=True, created_ms=1),
                       Identity.from_seed(n.to_bytes(4, "big") * 8))


async def test_refused_records_by_fresh_identities_leave_bounded_tables_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each refused record left a standing and a gossip score for its author for ever
    (~170 B, nothing stored, the relay uncharged); now at most MAX_TRACKED of each, and the
    most negative (a repeat liar, ignored) are kept last."""
    monkeypatch.setattr(node.net.bounded_table, "MAX_TRACKED", 64)
    problem = history(0, 0)[0]
    assert isinstance(problem, Problem)
    async with open_node(MemoryHub(), RECEIVER, tmp_path, [problem]) as receiver:
        for _ in range(5):  # a liar refused five times: ignored (standing below the floor)
            await receiver.take([sign_record(Verification(
                experiment=problem.id, outcome=Outcome(status="ok"), match=True,
                created_ms=len(receiver.ledger.standing)), LIAR)])
        assert receiver.ledger.ignored(LIAR.peer_id)
        for start in range(0, 1_000, 100):
            await receiver.take([refused_by_a_fresh_identity(problem, start + n)
                                 for n in range(100)])
        assert receiver.stats.refused + receiver.stats.ignored == 1_005
        assert receiver.store.count() == 1
        assert len(receiver.ledger.standing) <= 64
        scores = receiver.network._scores  # type: ignore[attr-defined]
        assert len(scores) <= 64
        assert receiver.ledger.ignored(LIAR.peer_id) and scores[LIAR.peer_id] < 0


@settings(max_examples=50, deadline=None)
@given(scores=st.lists(st.floats(-100, 100, allow_nan=False), max_size=300),
       limit=st.integers(2, 40))
def test_a_bounded_table_keeps_every_positive_and_the_most_negative(
    scores: list[float], limit: int
) -> None:
    table: dict[str, float] = {}
    for n, score in enumerate(scores):
        table[str(n)] = score
        bound_negatives(table, limit)
        positives = sum(1 for s in table.values() if s >= 0)
        assert len(table) <= max(limit, positives + limit // 2)
    if scores and min(scores) < 0:  # the most negative (an ignored liar) is never dropped
        assert min(table.values()) == min(scores)
    assert {k for k, s in enumerate(scores) if s >= 0} == {int(k) for k, s in table.items()
                                                           if s >= 0}


async def test_serving_remembers_only_the_records_someone_watches(tmp_path: Path) -> None:
    """Every id ever served was kept (145 B each) so that `swarm pose` could tell its problem
    was fetched: a late joiner fetching the whole history grew it by the history."""
    records = history(50, 200)
    hub = MemoryHub()
    async with open_node(hub, SERVER, tmp_path, records) as server, \
            open_node(hub, RECEIVER, tmp_path) as receiver:
        server.sync.watch(records[0].id)
        await receiver.network.connect(f"/memory/{server.me}")
        assert await receiver.sync.sync_with(server.me) == len(records)
        assert server.sync.served(records[0].id) and not server.sync.served(records[1].id)
        assert server.sync._served == {records[0].id}
        ask = encode_sync_request(SyncFetch(ids=[r.id for r in records]))
        assert await server.sync.handle("someone", ask)
        assert server.sync._served == {records[0].id}


def strangers_problem(n: int, data: int = 0) -> Problem:
    """A valid problem by a fresh identity, with `data` bytes of zeros besides its strategy."""
    files = {"strategy.py": f"X = {n}\n".encode()}
    if data:
        files["data/public/zeros.bin"] = bytes(data)
    made = sign_record(Problem(
        name=f"junk{n}", statement="optimise", metric=Metric(name="s", direction="maximize"),
        mutable=["strategy.py"], files=files, created_ms=1),
        Identity.from_seed(n.to_bytes(4, "big") * 8))
    assert isinstance(made, Problem)
    return made


async def test_strangers_problems_past_the_catalogues_bounds_are_not_taken(
    tmp_path: Path,
) -> None:
    """Every problem is held whole in memory, its files at full size (3 MiB of zeros cost
    3 MiB for 32 KiB of disk), and problem ids are free: a node now holds others' problems up
    to a count and a size; its own and those chosen by id always come in."""
    mine = sign_record(strangers_problem(0).model_copy(update={"name": "mine"}), RECEIVER)
    chosen = strangers_problem(99)
    async with open_node(MemoryHub(), RECEIVER, tmp_path) as receiver:
        receiver.catalogue = Catalogue(RECEIVER.peer_id, {chosen.id}, (), max_count=3,
                                       max_bytes=3 << 20)
        junk = [strangers_problem(n) for n in range(1, 6)]
        assert await receiver.take(junk) == 3
        assert receiver.stats.drops.counts["catalogue"] == 2 and receiver.catalogue.full
        assert [p.id in receiver.dag for p in junk] == [True] * 3 + [False] * 2
        assert junk[4].id in receiver.catalogue and junk[0].id not in receiver.catalogue
        assert await receiver.take([mine, chosen]) == 2  # ours and chosen: always
        assert receiver.catalogue.count == 3
        shown = status_shown(receiver, tmp_path)  # what an operator sees
        assert "problems 3 of others' held, the most this node takes" in shown
        assert "catalogue 2" in shown
    # Memory counts files at full size, whatever the store makes of them.
    async with open_node(MemoryHub(), RECEIVER, tmp_path / "big") as receiver:
        receiver.catalogue = Catalogue(RECEIVER.peer_id, (), (), max_bytes=5 << 20)
        big = [strangers_problem(n, data=2 << 20) for n in range(10, 14)]
        assert await receiver.take(big) == 2
        assert receiver.catalogue.bytes > 4 << 20 and receiver.store.size() < 1 << 20


async def test_a_declined_problem_is_not_fetched_again_and_the_count_survives_a_restart(
    tmp_path: Path,
) -> None:
    junk = [strangers_problem(n) for n in range(1, 9)]
    hub = MemoryHub()
    async with open_node(hub, SERVER, tmp_path, junk) as server:
        async with open_node(hub, RECEIVER, tmp_path) as receiver:
            receiver.catalogue = Catalogue(RECEIVER.peer_id, (), receiver.known_problems(),
                                           max_count=5)
            await receiver.network.connect(f"/memory/{server.me}")
            assert await receiver.sync.sync_with(server.me) == 5
            served = server.sync.budget.by_reason()["served"]
            assert await receiver.sync.sync_with(server.me) == 0
            # the second pass asked for the summary only: the three declined are not fetched
            assert server.sync.budget.by_reason()["served"] == served + 1
        async with open_node(hub, RECEIVER, tmp_path) as again:  # the same store, restarted
            assert again.catalogue.count == 5 and len(again.known_problems()) == 5


async def test_votes_on_experiments_nobody_holds_cost_no_memory_until_one_comes(
    tmp_path: Path,
) -> None:
    """Every stored Verification's vote was noted in memory (~1 KB, more than the record takes
    on disk), also of experiments nobody holds: a stranger's endless verifications grew a
    node's memory past what its disk reserve bounds. Such a vote is noted when its experiment
    comes, now or after a restart."""
    records = history(3, 200)
    problem, claims = records[0], records[1:]
    voters = [Identity.from_seed(bytes([0x70 + n]) * 32) for n in range(5)]
    votes = [sign_record(Verification(experiment=claim.id, outcome=Outcome(status="ok"),
                                      match=False, created_ms=1), voter)
             for claim in claims for voter in voters]
    async with open_node(MemoryHub(), RECEIVER, tmp_path, [problem]) as receiver:
        assert await receiver.take(votes) == len(votes)  # stored, not noted
        assert receiver.ledger.votes == {}
        assert await receiver.take([claims[0]]) == 1  # the experiment comes: its votes count
        assert set(receiver.ledger.votes) == {claims[0].id}
        assert len(receiver.ledger.votes[claims[0].id]) == len(voters)
    async with open_node(MemoryHub(), RECEIVER, tmp_path) as again:  # restarted
        await again.restore_ledger()
        assert set(again.ledger.votes) == {claims[0].id}
        assert await again.take([claims[1]]) == 1
        assert set(again.ledger.votes) == {claims[0].id, claims[1].id}


async def test_a_cancelled_intake_counts_no_problem_it_did_not_store(tmp_path: Path) -> None:
    """A problem was counted when admitted, before its batch was stored: a cancel at one of
    intake's checkpoints (sync's 30 s limit, which the sending peer can time) left it counted
    though never stored, and sent again it counted again, until the catalogue was full of
    nothing and declined honest problems (a red team of the catalogue)."""
    junk = strangers_problem(1, data=1 << 20)
    honest = strangers_problem(2)
    async with open_node(MemoryHub(), RECEIVER, tmp_path) as receiver:
        receiver.catalogue = Catalogue(RECEIVER.peer_id, (), (), max_count=4,
                                       max_bytes=64 << 20)
        for _ in range(4):
            with trio.CancelScope() as scope:
                scope.cancel()  # the pass's deadline, due at intake's first checkpoint
                await receiver.take([junk] * (TAKE_STEP + 1))
        assert junk.id not in receiver.dag
        assert (receiver.catalogue.count, receiver.catalogue.bytes) == (0, 0)
        assert await receiver.take([honest]) == 1
        # Within one batch the bound holds for what is being stored.
        more = [strangers_problem(n) for n in range(3, 10)]
        assert await receiver.take(more) == 3 and receiver.catalogue.count == 4


async def test_a_vouched_vote_stored_after_many_strangers_counts_when_the_claim_comes(
    tmp_path: Path,
) -> None:
    """Stored votes were noted, when their experiment came, only for the first 256 in storage
    order and on the event loop: 256 free identities voting first kept a vouched peer's vote
    out until a restart, and many such votes held the loop for seconds (a red team). All are
    read now, a page at a time in a worker thread; the ledger keeps a vouched vote over
    strangers'."""
    records = history(1, 200)
    problem, claim = records[0], records[1]
    strangers = [sign_record(Verification(experiment=claim.id, outcome=Outcome(status="ok"),
                                          match=False, created_ms=1),
                             Identity.from_seed(n.to_bytes(4, "big") * 8))
                 for n in range(1, 4 * MAX_VOTES + 1)]
    honest = Identity.from_seed(b"\x77" * 32)
    vote = sign_record(Verification(experiment=claim.id, outcome=claim.outcome, match=True,
                                    created_ms=1), honest)
    async with open_node(MemoryHub(), RECEIVER, tmp_path, [problem]) as receiver:
        receiver.ledger.standing[honest.peer_id] = 1.0  # our replays reproduced its claims
        assert await receiver.take(strangers) == len(strangers)  # a late joiner's pages
        assert await receiver.take([vote]) == 1
        assert await receiver.take([claim]) == 1
        voters = {v.author for v in receiver.ledger.votes[claim.id]}
        assert honest.peer_id in voters and len(voters) <= MAX_VOTES


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(st.tuples(st.lists(st.integers(0, 40), min_size=1, max_size=6),
                                  st.booleans()), min_size=1, max_size=6),
       max_count=st.integers(1, 8), max_kib=st.integers(8, 200))
def test_the_catalogue_counts_exactly_what_is_stored_and_never_passes_its_bounds(
    batches: list[tuple[list[int], bool]], max_count: int, max_kib: int
) -> None:
    """Whatever the batches (problems of any size, repeated, some intakes cancelled at their
    first checkpoint): the catalogue's count and bytes are those of the strangers' problems
    stored, and within its bounds."""

    async def main(root: Path) -> None:
        async with open_node(MemoryHub(), RECEIVER, root) as receiver:
            receiver.catalogue = Catalogue(RECEIVER.peer_id, (), (), max_count=max_count,
                                           max_bytes=max_kib << 10)
            for sizes, cancelled in batches:
                batch = [strangers_problem(n + 1, data=n << 10) for n in sizes]
                if cancelled:
                    with trio.CancelScope() as scope:
                        scope.cancel()
                        await receiver.take(batch * (TAKE_STEP // len(batch) + 1))
                else:
                    await receiver.take(batch)
                held = receiver.known_problems()
                assert receiver.catalogue.count == len(held) <= max_count
                assert receiver.catalogue.bytes == sum(map(held_bytes, held)) <= max_kib << 10

    with tempfile.TemporaryDirectory() as root:
        trio.run(main, Path(root))
