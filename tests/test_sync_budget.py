"""What a node serves by sync, per peer: a flooder is paced and refused while an honest peer's
sync completes, a late joiner's whole-history pull completes paced, and no sequence of requests
from any peers takes the budget past its bounds. Real nodes and SQLite stores on the in-memory
network (and real libp2p hosts on 127.0.0.1 for the reset a refusal is on the wire), in a
virtual time that moves only while the nodes are idle (`jump_when_quiet`)."""

from __future__ import annotations

import contextlib
import math
import random
import tempfile
import threading
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from node.identity import Identity, sign_record
from node.mutators import OfflineMutator
from node.net import SyncService
from node.net.memory import MemoryHub, MemoryNetwork
from node.net.network import (
    MAX_RESPONSE_BYTES,
    REQUEST_ORIGIN,
    SYNC_PROTOCOL,
    NetworkError,
    network_group,
)
from node.net.serve_budget import ServeLimits, ServeRefused
from node.net.wire import SyncFetch, SyncSummaryRequest, WireError, encode_sync_request
from node.problem import load_package
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Experiment, Outcome, Problem, Record

PROBE = Path(__file__).parent / "fixtures" / "probe"
AUTHOR = Identity.from_seed(b"\x21" * 32)
SERVER = Identity.from_seed(b"\x22" * 32)
HONEST = Identity.from_seed(b"\x23" * 32)
FLOODER = Identity.from_seed(b"\x24" * 32)
QUIET_S = 0.002  # real seconds every task must wait before virtual time moves


def history(count: int, chars: int, seed: int = 0) -> list[Record]:
    """A signed problem and `count` signed experiments of ~`chars` bytes each (hex text: the
    wire carries it whole)."""
    problem = sign_record(load_package(PROBE), AUTHOR)
    assert isinstance(problem, Problem)
    rng = random.Random(seed)
    records: list[Record] = [problem]
    for n in range(count):
        claim = Experiment(problem=problem.id, strategy={"strategy.py": rng.randbytes(
            chars // 2).hex()}, outcome=Outcome(status="ok", score=float(n)), created_ms=n + 1)
        records.append(sign_record(claim, AUTHOR))
    return records


def _no_evaluator(problem: Problem) -> None:
    raise AssertionError("these nodes research nothing")


@asynccontextmanager
async def open_node(hub: MemoryHub, identity: Identity, root: Path,
                    records: Sequence[Record] = (), limits: ServeLimits | None = None
                    ) -> AsyncIterator[SwarmNode]:
    """A node holding `records` in a fresh store under `root`, serving sync within `limits`.
    Its `serve` is not run: these tests make every sync exchange themselves."""
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(hub.open_node(identity.peer_id))
        store = stack.enter_context(RecordStore.open(root / f"{identity.peer_id}.sqlite",
                                                     durable=False))
        store.add_many(records)
        node = SwarmNode(identity, network, store, _no_evaluator,  # type: ignore[arg-type]
                         OfflineMutator(), NodeConfig(problems=()))
        if limits is not None:
            node.sync = SyncService(network, node, node.decoded, node.stats.drops, limits)
        yield node


async def jump_when_quiet(clock: trio.testing.MockClock, nodes: Sequence[SwarmNode]) -> None:
    """Moves the clock to the next deadline whenever every task waits and no node has work in
    a worker thread: pacing shows whatever the machine's speed (autojump would also jump while
    a thread runs: trio cannot see threads)."""
    while True:
        await trio.testing.wait_all_tasks_blocked(QUIET_S)
        if any(node.busy for node in nodes):
            continue
        step = trio.lowlevel.current_statistics().seconds_to_next_deadline
        if math.isfinite(step):
            clock.jump(max(step, 0.0))


@dataclass
class Flood:
    """What a flooder asking for the same big fetch over and over got."""

    answered: int = 0
    bytes: int = 0
    refused: int = 0


async def keep_asking(network: MemoryNetwork, server: str, ids: list[str], tasks: int,
                      got: Flood) -> None:
    """`tasks` requests at a time for `ids`, each asked again once answered; a refused one
    asks again after the flooder's next answer (a flooder keeping its queue full). Runs until
    cancelled."""
    request = encode_sync_request(SyncFetch(ids=sorted(ids)[:1024]))
    answered = trio.lowlevel.ParkingLot()

    async def one() -> None:
        while True:
            try:
                reply = await network.request(server, SYNC_PROTOCOL, request)
            except NetworkError:
                got.refused += 1
                await answered.park()
                continue
            got.answered += 1
            got.bytes += len(reply)
            answered.unpark_all()

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(one)


async def sync_under_flood(clock: trio.testing.MockClock, server: SwarmNode, honest: SwarmNode,
                           flooders: Sequence[MemoryNetwork], tasks: int, floods: list[Flood],
                           records: Sequence[Record]) -> float:
    """The honest peer's sync of everything while each flooder keeps `tasks` fetches of it
    open; its (virtual) seconds. It must take every record in one pass."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(jump_when_quiet, clock, [server, honest])
        await honest.network.connect(f"/memory/{server.me}")
        began = trio.current_time()
        for flooder, got in zip(flooders, floods, strict=True):
            await flooder.connect(f"/memory/{server.me}")
            nursery.start_soon(keep_asking, flooder, server.me, [r.id for r in records], tasks,
                               got)
        await trio.testing.wait_all_tasks_blocked(QUIET_S)  # the flood is under way
        taken = await honest.sync.sync_with(server.me)
        elapsed = trio.current_time() - began
        held = honest.dag.ids()
        nursery.cancel_scope.cancel()
    assert taken == len(records) and honest.sync.failures == 0
    assert held == {r.id for r in records}
    return elapsed


def budget_bound(limits: ServeLimits, seconds: float) -> float:
    """The most one peer can be sent in `seconds`: its burst, its rate, and the replies in
    flight when its bucket was last out of debt (charged after they are built)."""
    overdraft = limits.serving_per_peer * MAX_RESPONSE_BYTES
    return limits.burst_bytes + limits.bytes_per_s * seconds + overdraft


def node_bound(limits: ServeLimits, seconds: float, largest: int = MAX_RESPONSE_BYTES) -> float:
    """The most all peers together can be sent in `seconds` (as `budget_bound`, node-wide),
    answers being at most `largest` bytes."""
    overdraft = limits.serving * largest
    return limits.node_burst_bytes + limits.node_bytes_per_s * seconds + overdraft


async def test_a_flooder_is_paced_and_refused_while_an_honest_peer_syncs_everything(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    records = history(36, 140_000)  # ~5 MB: two replies, the first a full 4 MiB
    limits = ServeLimits(bytes_per_s=2 * 2**20, burst_bytes=2**20)
    hub = MemoryHub()
    got = Flood()
    async with open_node(hub, SERVER, tmp_path, records, limits) as server, \
            open_node(hub, HONEST, tmp_path) as honest, \
            hub.open_node(FLOODER.peer_id) as flooder:
        elapsed = await sync_under_flood(mock_clock, server, honest, [flooder], 12, [got],
                                         records)
    # The flooder: refused beyond its queue, paced within its byte budget.
    assert got.refused >= 12 - 1 - limits.waiting_per_peer
    assert got.answered >= 1 and got.bytes <= budget_bound(limits, elapsed)
    counted = server.sync.budget.by_reason()
    assert counted["refused"] == got.refused and counted["paced"] >= 1
    load = server.sync.budget.load(FLOODER.peer_id)
    assert load is not None and load.sent == got.bytes and load.refused == got.refused


async def test_many_identities_flooding_share_the_nodes_bytes_while_an_honest_peer_syncs(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    """Identities are free: eight flooders, each within its own (generous) budget, are held
    together to the node's byte rate, and an honest peer still gets its turn at it (one in
    nine: each turn waits for the flooders' 4 MiB answers ahead of it, 0.5 s each)."""
    records = history(36, 140_000, seed=4)  # ~5 MB: two fetch replies, the first 4 MiB
    limits = ServeLimits(bytes_per_s=64 * 2**20, burst_bytes=8 * 2**20,
                         node_bytes_per_s=8 * 2**20, node_burst_bytes=2**20)
    hub = MemoryHub()
    floods = [Flood() for _ in range(8)]
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(open_node(hub, SERVER, tmp_path, records,
                                                           limits))
        honest = await stack.enter_async_context(open_node(hub, HONEST, tmp_path))
        flooders = [await stack.enter_async_context(hub.open_node(f"sybil-{n}"))
                    for n in range(len(floods))]
        elapsed = await sync_under_flood(mock_clock, server, honest, flooders, 2, floods,
                                         records)
    budget = server.sync.budget
    flooded = sum(got.bytes for got in floods)
    assert sum(got.answered for got in floods) >= 1
    # Each flooder alone could have had 8 MiB at once and 64 MiB/s; together they got the
    # node's rate, the honest peer's answers included.
    assert flooded + budget.loads()[honest.me].sent == budget.sent
    assert budget.sent <= node_bound(limits, elapsed)
    assert budget.by_reason()["throttled"] >= 1
    assert elapsed < 30  # one pass: its turns came within the exchange limit


async def test_identities_from_one_address_block_share_one_budget_and_one_turn(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    """Eight identities from one /24 (as libp2p sees their addresses) are one requester to the
    budget: one answer at a time at one peer's rate, one turn at the node's bytes, the rest
    refused; the honest peer from another block waits for at most one of their answers."""
    records = history(36, 140_000, seed=4)  # ~5 MB: two fetch replies, the first 4 MiB
    limits = ServeLimits(bytes_per_s=2 * 2**20, burst_bytes=2**20,
                         node_bytes_per_s=8 * 2**20, node_burst_bytes=2**20)
    hub = MemoryHub()
    floods = [Flood() for _ in range(8)]
    block = network_group("81.2.69.7")
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(open_node(hub, SERVER, tmp_path, records,
                                                           limits))
        honest = await stack.enter_async_context(open_node(hub, HONEST, tmp_path))
        hub.origins[honest.me] = network_group("93.184.216.34")
        flooders = [await stack.enter_async_context(hub.open_node(f"sybil-{n}", block))
                    for n in range(len(floods))]
        elapsed = await sync_under_flood(mock_clock, server, honest, flooders, 2, floods,
                                         records)
    loads = server.sync.budget.loads()
    assert block is not None and set(loads) == {block, "93.184.216.0/24"}
    flooded = sum(got.bytes for got in floods)
    assert flooded == loads[block].sent <= budget_bound(limits, elapsed)  # one peer's budget
    assert sum(got.refused for got in floods) == loads[block].refused >= 1
    # Its two answers (~5 MB at the node's 8 MiB/s) and at most one of theirs before each.
    assert elapsed <= 4 * 4 * 2**20 / limits.node_bytes_per_s


def test_a_network_group_is_a_public_addresss_block() -> None:
    assert network_group("81.2.69.7") == network_group("81.2.69.250") == "81.2.69.0/24"
    assert network_group("81.2.70.7") != network_group("81.2.69.7")
    assert network_group("::ffff:81.2.69.9") == "81.2.69.0/24"
    assert network_group("2001:4860:1:2::1") == network_group("2001:4860:1:ffff::9")
    assert network_group("2001:4860:1:2::1") == "2001:4860:1::/48"
    for own in ("127.0.0.1", "10.1.2.3", "192.168.0.9", "::1", "fe80::1%eth0", "0.0.0.0",
                "203.0.113.7", "100.64.0.1", "not an address", "", "1.2.3.4.5"):
        assert network_group(own) is None, own


async def test_a_late_joiner_pulls_the_whole_history_paced_in_one_pass(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    records = history(36, 140_000, seed=1)  # ~5 MB: a summary and two fetch replies
    limits = ServeLimits(bytes_per_s=2**20, burst_bytes=0)
    hub = MemoryHub()
    async with open_node(hub, SERVER, tmp_path, records, limits) as server, \
            open_node(hub, HONEST, tmp_path) as joiner, trio.open_nursery() as nursery:
        nursery.start_soon(jump_when_quiet, mock_clock, [server, joiner])
        await joiner.network.connect(f"/memory/{server.me}")
        began = trio.current_time()
        taken = await joiner.sync.sync_with(server.me)  # one pass: 30 s (virtual) at most
        elapsed = trio.current_time() - began
        held = joiner.dag.ids()
        nursery.cancel_scope.cancel()
    assert taken == len(records) and joiner.sync.failures == 0
    assert held == {r.id for r in records}
    load = server.sync.budget.load(joiner.me)
    assert load is not None and load.refused == 0
    # With no burst, each fetch waited for the bytes of the answer before.
    assert load.paced >= 2 and server.sync.budget.by_reason()["paced"] == load.paced
    assert load.sent <= budget_bound(limits, elapsed)


async def test_answers_cancelled_by_their_asker_never_run_past_the_serving_threads(
    tmp_path: Path,
) -> None:
    """An asker resetting each request 3 ms in: each answer's worker thread was abandoned and
    kept building its 4 MiB answer after its slot was freed, so the next ones started beside
    it (up to trio's 40 shared threads). Now an answer's thread is one of `serving`, kept until
    it ends."""
    records = history(36, 140_000, seed=4)  # a 4 MiB answer: ~0.1 s of a thread
    limits = ServeLimits(bytes_per_s=2**40, burst_bytes=2**40, node_bytes_per_s=2**40,
                         node_burst_bytes=2**40)
    request = encode_sync_request(SyncFetch(ids=sorted(r.id for r in records)[:1024]))
    hub = MemoryHub()
    running = peak = 0
    lock = threading.Lock()
    async with open_node(hub, SERVER, tmp_path, records, limits) as server, \
            hub.open_node("asker") as asker:
        answer = server.sync._answer

        def counted(data: bytes) -> bytes:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            try:
                return answer(data)
            finally:
                with lock:
                    running -= 1

        server.sync._answer = counted  # type: ignore[method-assign]
        await asker.connect(f"/memory/{server.me}")
        with trio.fail_after(60):
            for _ in range(40):
                with trio.move_on_after(0.003):  # reset once the answer is being built
                    with contextlib.suppress(NetworkError):
                        await asker.request(server.me, SYNC_PROTOCOL, request)
            while server.sync.decoding:
                await trio.sleep(0.01)
    assert 1 <= peak <= limits.serving, peak


async def test_a_pass_cut_short_counts_what_it_took(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    """A pass whose next fetch is refused (its turn would come after `max_wait_s`) ends as a
    failure, but what it took before is counted: it reported 0 (a joiner under a flood of
    identities saw 0, 0, 0 while its records arrived)."""
    records = history(36, 140_000, seed=7)  # ~5 MB: the first fetch brings 4 MiB of it
    limits = ServeLimits(bytes_per_s=100_000, burst_bytes=0)  # the next turn in ~40 s
    hub = MemoryHub()
    async with open_node(hub, SERVER, tmp_path, records, limits) as server, \
            open_node(hub, HONEST, tmp_path) as joiner, trio.open_nursery() as nursery:
        nursery.start_soon(jump_when_quiet, mock_clock, [server, joiner])
        await joiner.network.connect(f"/memory/{server.me}")
        taken = await joiner.sync.sync_with(server.me)
        held = len(joiner.dag)
        nursery.cancel_scope.cancel()
    assert joiner.sync.failures == 1 and server.sync.budget.by_reason()["expired"] >= 1
    assert 0 < taken == held < len(records) and joiner.sync.fetched == taken


# ---- any requests, any peers: the bounds hold at every step -------------------------------


class Bounds(trio.abc.Instrument):
    """After every task step: what the server runs and remembers is within its limits."""

    def __init__(self, sync: SyncService, limits: ServeLimits, largest: int) -> None:
        self.sync, self.limits, self.largest = sync, limits, largest
        self.broken: Counter[str] = Counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        sync, limits, budget = self.sync, self.limits, self.sync.budget
        self.broken["threads"] += sync.decoding > limits.serving
        self.broken["serving"] += budget.serving > limits.serving
        self.broken["waiting"] += budget.waiting > limits.waiting
        self.broken["tracked"] += budget.tracked > limits.peers
        self.broken["node bytes"] += budget.sent > node_bound(limits, trio.current_time(),
                                                              self.largest)
        for load in budget.loads().values():
            self.broken["peer serving"] += load.serving > limits.serving_per_peer
            self.broken["peer waiting"] += load.waiting > limits.waiting_per_peer


REQUESTS = st.lists(
    st.tuples(
        st.integers(0, 3) | st.integers(0, 199),  # peer: a few busy ones among up to 200
        st.sampled_from(["fetch", "fetch", "summary", "garbage"]),
        st.integers(0, 3),  # tenths of a (virtual) second before asking
        st.none() | st.integers(0, 20),  # tenths of a second before giving up, if ever
        st.none() | st.sampled_from(["81.2.69.0/24", "93.184.216.0/24"]),  # its address block
    ),
    min_size=8, max_size=120,
)
LIMITS = st.builds(
    lambda rate, burst, per_peer, waiting_per_peer, serving, waiting, spare, wait, node_rate,
    node_burst: ServeLimits(
        bytes_per_s=rate, burst_bytes=burst, serving_per_peer=min(per_peer, serving),
        waiting_per_peer=waiting_per_peer, serving=serving, waiting=waiting,
        peers=waiting + serving + spare, max_wait_s=wait, node_bytes_per_s=node_rate,
        node_burst_bytes=node_burst),
    st.sampled_from([2_000.0, 200_000.0, 4 * 2**20]), st.sampled_from([0, 10_000, 2**24]),
    st.integers(1, 2), st.integers(1, 4), st.integers(1, 3), st.integers(1, 8),
    st.integers(1, 4), st.sampled_from([0.3, 10.0]),
    st.sampled_from([4_000.0, 400_000.0, 12 * 2**20]), st.sampled_from([0, 20_000, 2**26]),
)
SMALL = history(12, 4_000, seed=2)


@settings(max_examples=30, deadline=None)
@given(requests=REQUESTS, limits=LIMITS)
def test_no_requests_from_any_peers_take_serving_past_its_bounds(
    requests: list[tuple[int, str, int, int | None, str | None]], limits: ServeLimits
) -> None:
    ids = sorted(r.id for r in SMALL)
    payloads = {"fetch": encode_sync_request(SyncFetch(ids=ids)),
                "summary": encode_sync_request(SyncSummaryRequest()), "garbage": b"\xc1"}
    outcomes: Counter[str] = Counter()

    async def ask(sync: SyncService, peer: str, kind: str, delay: int,
                  give_up: int | None, origin: str | None) -> None:
        REQUEST_ORIGIN.set(origin)  # as the network layer sets it (this task's own context)
        await trio.sleep(delay / 10)
        with trio.move_on_after(math.inf if give_up is None else give_up / 10):
            try:
                await sync.handle(peer, payloads[kind])
            except (WireError, ServeRefused) as error:  # the network layer resets the stream
                outcomes[type(error).__name__] += 1
            else:
                outcomes["answered"] += 1
            return
        outcomes["gave up"] += 1

    async def main() -> Bounds:
        with tempfile.TemporaryDirectory() as root:
            async with open_node(MemoryHub(), SERVER, Path(root), SMALL, limits) as server, \
                    trio.open_nursery() as outer:
                outer.start_soon(jump_when_quiet, clock, [server])
                # The largest answer (a fetch of everything), asked first: the node's bytes
                # are overdrawn by at most `serving` answers built past its bucket's last look.
                largest = len(await server.sync.handle("probe", payloads["fetch"]))
                bounds = Bounds(server.sync, limits, largest)
                trio.lowlevel.add_instrument(bounds)
                try:
                    async with trio.open_nursery() as nursery:
                        for peer, kind, delay, give_up, origin in requests:
                            nursery.start_soon(ask, server.sync, f"peer-{peer}", kind, delay,
                                               give_up, origin)
                finally:
                    trio.lowlevel.remove_instrument(bounds)
                outer.cancel_scope.cancel()
                budget = server.sync.budget
                assert budget.serving == budget.waiting == 0
                assert sum(outcomes.values()) == len(requests)
                assert outcomes["answered"] + 1 == budget.counts["served"]
                return bounds

    clock = trio.testing.MockClock()
    bounds = trio.run(main, clock=clock)
    assert +bounds.broken == Counter(), bounds.broken


# ---- on the wire: a refusal is a reset stream, over real libp2p -------------------------------


async def test_over_libp2p_a_refused_request_is_a_reset_and_a_polite_one_is_answered(
    tmp_path: Path,
) -> None:
    """A requester keeping eight fetches open at once, where one may wait behind the one
    served: those arriving while one waits (paced behind the bytes of the one before) are reset
    at once, as the network layer resets a request it cannot parse (docs/protocol.md section
    7); one asked after the answers is served."""
    from node.net.libp2p import open_libp2p_network

    records = history(30, 150_000, seed=3)  # ~4.5 MB: every fetch is a full 4 MiB reply
    limits = ServeLimits(bytes_per_s=16 * 2**20, burst_bytes=0, waiting_per_peer=1)
    request = encode_sync_request(SyncFetch(ids=sorted(r.id for r in records)[:1024]))
    replies: list[int] = []
    resets = 0
    with RecordStore.open(tmp_path / "server.sqlite", durable=False) as store:
        store.add_many(records)
        async with open_libp2p_network(SERVER.private_key) as network, \
                open_libp2p_network(FLOODER.private_key,
                                    bootstrap=network.listen_addrs()) as asker:
            server = SwarmNode(SERVER, network, store, _no_evaluator,  # type: ignore[arg-type]
                               OfflineMutator(), NodeConfig(problems=()))
            server.sync = SyncService(network, server, server.decoded, server.stats.drops,
                                      limits)

            async def ask() -> None:
                nonlocal resets
                try:
                    replies.append(len(await asker.request(SERVER.peer_id, SYNC_PROTOCOL,
                                                           request)))
                except NetworkError:
                    resets += 1

            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    for _ in range(8):
                        nursery.start_soon(ask)
                assert resets >= 1 and len(replies) == 8 - resets
                await ask()  # its queue is empty again: answered, whatever came before
            assert len(replies) == 9 - resets and len(set(replies)) == 1
            assert replies[0] > MAX_RESPONSE_BYTES - 200_000
            counted = server.sync.budget.by_reason()
            assert counted["refused"] == resets and counted["served"] == len(replies)
            assert network.handler_failures == resets  # counted as the network layer does
