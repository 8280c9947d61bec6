"""The in-memory network: multi-hop gossip, loss, partitions, latency, scoring and requests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
import trio.testing

from node.net.memory import (
    CHANNEL_SIZE,
    GRAYLIST_THRESHOLD,
    INVALID_MESSAGE_PENALTY,
    TICK_S,
    HubStats,
    MemoryHub,
    MemoryNetwork,
    parse_memory_addr,
)
from node.net.network import (
    MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
    GossipMessage,
    Network,
    NetworkError,
)

TOPIC = "/swarm/1/problem/test"
Inbox = trio.MemoryReceiveChannel[GossipMessage]


@asynccontextmanager
async def open_nodes(hub: MemoryHub, names: str) -> AsyncIterator[dict[str, MemoryNetwork]]:
    async with AsyncExitStack() as stack:
        yield {name: await stack.enter_async_context(hub.open_node(name)) for name in names}


async def link(nodes: dict[str, MemoryNetwork], edges: str) -> None:
    for edge in edges.split():
        a, b = edge.split("-")
        await nodes[a].connect(nodes[b].listen_addrs()[0])


async def inboxes(nodes: dict[str, MemoryNetwork]) -> dict[str, Inbox]:
    return {name: await net.subscribe(TOPIC) for name, net in nodes.items()}


def pending(inbox: Inbox) -> list[bytes]:
    found = []
    while True:
        try:
            found.append(inbox.receive_nowait().data)
        except trio.WouldBlock:
            return found


def add_up(stats: HubStats) -> None:
    total = stats.total
    resolved = total.delivered + total.duplicates + total.rejected + total.dropped
    assert total.sent == resolved + stats.in_flight
    for field in ("published", "sent", "delivered", "duplicates", "rejected", "dropped"):
        assert getattr(total, field) == sum(getattr(s, field) for s in stats.nodes.values())


async def test_message_crosses_a_line_through_the_middle_node() -> None:
    hub = MemoryHub()
    async with open_nodes(hub, "ABCDE") as nodes:
        await link(nodes, "A-B B-C C-D D-E")
        boxes = await inboxes({name: nodes[name] for name in "ABCE"})  # D does not relay
        with trio.fail_after(5):
            await nodes["A"].publish(TOPIC, b"hello")
            message = await boxes["C"].receive()
            assert message == GossipMessage(TOPIC, "A", b"hello")
            assert (await boxes["B"].receive()).data == b"hello"
            await hub.wait_idle()
        assert pending(boxes["A"]) == pending(boxes["E"]) == []  # not to self, not past D
        stats = hub.stats()
        assert stats.nodes["A"].published == stats.nodes["C"].delivered == 1
        assert stats.nodes["C"].sent == 0  # D is not subscribed: nobody to send to
        add_up(stats)


async def test_diamond_delivers_once() -> None:
    hub = MemoryHub()
    async with open_nodes(hub, "ABCD") as nodes:
        await link(nodes, "A-B A-C B-D C-D")
        boxes = await inboxes(nodes)
        with trio.fail_after(5):
            await nodes["A"].publish(TOPIC, b"once")
            await hub.wait_idle()
        assert pending(boxes["D"]) == [b"once"]
        assert hub.stats().nodes["D"].duplicates == 1
        add_up(hub.stats())


async def test_total_loss_drops_every_hop() -> None:
    hub = MemoryHub(loss=1.0)
    async with open_nodes(hub, "AB") as nodes:
        await link(nodes, "A-B")
        boxes = await inboxes(nodes)
        with trio.fail_after(5):
            for i in range(10):
                await nodes["A"].publish(TOPIC, b"%d" % i)
            await hub.wait_idle()
            with pytest.raises(NetworkError, match="lost"):
                await nodes["A"].request("B", "/echo", b"")
        assert pending(boxes["B"]) == []
        stats = hub.stats()
        assert stats.total.sent == stats.nodes["B"].dropped == 10
        assert stats.nodes["A"].failed_requests == 1
        add_up(stats)


async def test_partition_blocks_until_heal() -> None:
    hub = MemoryHub()
    async with open_nodes(hub, "ABCD") as nodes:
        await link(nodes, "A-B B-C")
        boxes = await inboxes(nodes)
        nodes["C"].handle_requests("/echo", echo)
        with pytest.raises(ValueError, match="two partition groups"):
            hub.partition([{"A"}, {"A", "B"}])
        hub.partition([{"A", "B"}])  # C and D, in no group, form one together
        with trio.fail_after(5):
            await nodes["A"].publish(TOPIC, b"split")
            await hub.wait_idle()
            assert pending(boxes["B"]) == [b"split"]
            assert pending(boxes["C"]) == []
            with pytest.raises(NetworkError, match="partitioned"):
                await nodes["B"].request("C", "/echo", b"ping")
            with pytest.raises(NetworkError, match="partitioned"):
                await link(nodes, "A-D")
            await link(nodes, "C-D")  # inside one group
            hub.heal()
            await nodes["A"].publish(TOPIC, b"healed")
            assert (await boxes["D"].receive()).data == b"healed"
            assert await nodes["B"].request("C", "/echo", b"ping") == b"ping"


async def test_latency_is_respected_in_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = MemoryHub(latency_s=0.05, jitter_s=0.02, seed=3)
    async with open_nodes(hub, "ABC") as nodes:
        await link(nodes, "A-B B-C")
        boxes = await inboxes(nodes)
        start = trio.current_time()
        with trio.fail_after(1):
            await nodes["A"].publish(TOPIC, b"slow")
            await boxes["B"].receive()
            at_b = trio.current_time() - start
            await boxes["C"].receive()
            at_c = trio.current_time() - start
        assert 0.05 <= at_b <= 0.07 + TICK_S
        assert 0.10 <= at_c <= 0.14 + 2 * TICK_S
        assert at_c - at_b >= 0.05
        nodes["C"].handle_requests("/echo", echo)
        start = trio.current_time()
        assert await nodes["B"].request("C", "/echo", b"rtt") == b"rtt"
        assert 0.10 <= trio.current_time() - start <= 0.14


async def test_rejected_messages_stop_cost_the_sender_and_get_it_graylisted() -> None:
    hub = MemoryHub()
    valid = lambda source, data: not data.startswith(b"bad")  # noqa: E731
    async with open_nodes(hub, "ABC") as nodes:
        await link(nodes, "A-B B-C")
        boxes = await inboxes({"A": nodes["A"], "C": nodes["C"]})
        boxes["B"] = await nodes["B"].subscribe(TOPIC, validator=valid)
        with trio.fail_after(5):
            await nodes["A"].publish(TOPIC, b"bad 0")
            await hub.wait_idle()
            assert [pending(box) for box in boxes.values()] == [[], [], []]
            assert nodes["B"].score("A") == INVALID_MESSAGE_PENALTY
            assert hub.stats().nodes["C"].sent == 0
            for i in range(1, 10):
                await nodes["A"].publish(TOPIC, b"%s %d" % (b"bad" if i < 8 else b"good", i))
            await hub.wait_idle()
        cut_off_after = int(GRAYLIST_THRESHOLD // INVALID_MESSAGE_PENALTY) + 1
        assert hub.stats().nodes["B"].rejected == cut_off_after
        assert hub.stats().nodes["B"].dropped == 10 - cut_off_after
        assert pending(boxes["B"]) == pending(boxes["C"]) == []  # even valid ones are ignored
        assert nodes["B"].ignores("A")


async def test_graylisted_peer_is_ignored() -> None:
    hub = MemoryHub()
    async with open_nodes(hub, "ABC") as nodes:
        await link(nodes, "A-B C-B")
        boxes = await inboxes(nodes)
        nodes["B"].handle_requests("/echo", echo)
        nodes["B"].adjust_score("A", GRAYLIST_THRESHOLD - 1)
        with trio.fail_after(5):
            await nodes["A"].publish(TOPIC, b"from a")
            await nodes["C"].publish(TOPIC, b"from c")
            await hub.wait_idle()
            assert pending(boxes["B"]) == [b"from c"]
            assert pending(boxes["A"]) == []  # B does not forward to a peer it ignores
            with pytest.raises(NetworkError, match="graylisted"):
                await nodes["A"].request("B", "/echo", b"")
            assert await nodes["C"].request("B", "/echo", b"ok") == b"ok"
            nodes["B"].adjust_score("A", -GRAYLIST_THRESHOLD)  # forgiven
            assert await nodes["A"].request("B", "/echo", b"back") == b"back"


async def echo(peer: str, data: bytes) -> bytes:
    await trio.lowlevel.checkpoint()
    return data


async def test_request_response_limits_and_failures() -> None:
    async def serve(peer: str, data: bytes) -> bytes:
        await trio.lowlevel.checkpoint()
        answers = {b"who": peer.encode(), b"big": b"x" * (MAX_RESPONSE_BYTES + 1)}
        return answers[data]  # KeyError for anything else

    hub = MemoryHub()
    async with open_nodes(hub, "ABC") as nodes:
        await link(nodes, "A-B")
        nodes["B"].handle_requests("/echo", echo)
        nodes["B"].handle_requests("/serve", serve)
        ask = nodes["A"].request
        with trio.fail_after(5):
            assert await ask("B", "/echo", b"x" * MAX_REQUEST_BYTES) == b"x" * MAX_REQUEST_BYTES
            assert await ask("B", "/serve", b"who") == b"A"
            with pytest.raises(NetworkError, match="over"):
                await ask("B", "/echo", b"x" * (MAX_REQUEST_BYTES + 1))
            with pytest.raises(NetworkError, match="over"):
                await ask("B", "/serve", b"big")
            with pytest.raises(NetworkError, match="KeyError") as failed:
                await ask("B", "/serve", b"boom")
            assert isinstance(failed.value.__cause__, KeyError)
            with pytest.raises(NetworkError, match="does not serve"):
                await ask("B", "/missing", b"")
            with pytest.raises(NetworkError, match="not connected"):
                await ask("C", "/echo", b"")
            assert await ask("B", "/echo", b"still up") == b"still up"
        assert hub.stats().nodes["A"].requests == 8
        assert hub.stats().nodes["A"].failed_requests == 5


async def test_connect_emits_peer_events_on_both_sides_once() -> None:
    hub = MemoryHub()
    async with open_nodes(hub, "AB") as nodes:
        a, b = nodes["A"], nodes["B"]
        with trio.fail_after(5):
            assert await a.connect("/memory/B") == "B"
            assert await a.connect("/memory/B/p2p/B") == "B"  # already connected: no event
            assert await a.peer_events().receive() == "B"
            assert await b.peer_events().receive() == "A"
            with pytest.raises(trio.WouldBlock):
                a.peer_events().receive_nowait()
            for bad in ("/memory/A", "/ip4/1.2.3.4/tcp/1", "/memory/", "/memory/Z"):
                with pytest.raises(NetworkError):
                    await a.connect(bad)
        assert a.connected_peers() == ["B"] and b.connected_peers() == ["A"]
        assert parse_memory_addr(a.listen_addrs()[0]) == "A"


async def test_nodes_leaving_mid_delivery_crash_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = MemoryHub(latency_s=0.1)
    serving, failed, leave = trio.Event(), trio.Event(), trio.Event()

    async def slow(peer: str, data: bytes) -> bytes:
        serving.set()
        await trio.sleep(10)
        return data

    async def run_b(*, task_status: trio.TaskStatus[MemoryNetwork]) -> None:
        async with hub.open_node("B") as b:  # opened first, so B hosts the scheduler
            b.handle_requests("/slow", slow)
            task_status.started(b)
            await leave.wait()

    async with trio.open_nursery() as nursery:
        b = await nursery.start(run_b)
        async with open_nodes(hub, "AC") as nodes:
            boxes = await inboxes(nodes | {"B": b})
            await link(nodes | {"B": b}, "A-B B-C")

            async def ask() -> None:
                with pytest.raises(NetworkError, match="went down"):
                    await nodes["A"].request("B", "/slow", b"")
                failed.set()

            nursery.start_soon(ask)
            await serving.wait()
            await b.publish(TOPIC, b"orphan")  # both in flight when B goes down
            await nodes["A"].publish(TOPIC, b"to b")
            leave.set()
            with trio.fail_after(5):
                await failed.wait()
                await hub.wait_idle()
                assert pending(boxes["A"]) == pending(boxes["C"]) == []
                with pytest.raises(trio.EndOfChannel):
                    await boxes["B"].receive()
                assert nodes["A"].connected_peers() == nodes["C"].connected_peers() == []
                with pytest.raises(NetworkError, match="down"):
                    await b.publish(TOPIC, b"ghost")
                await link(nodes, "A-C")  # the scheduler has moved on to A
                await nodes["A"].publish(TOPIC, b"after")
                assert (await boxes["C"].receive()).data == b"after"
            await nodes["A"].publish(TOPIC, b"never")  # in flight as the last nodes leave
    stats = hub.stats()
    assert stats.in_flight == 0
    assert [stats.nodes[name].dropped for name in "ABC"] == [1, 1, 2]
    add_up(stats)


async def test_full_subscription_channel_drops_and_counts() -> None:
    hub = MemoryHub()
    async with open_nodes(hub, "AB") as nodes:
        await link(nodes, "A-B")
        box = await nodes["B"].subscribe(TOPIC)
        extra = 10
        with trio.fail_after(5):
            for i in range(CHANNEL_SIZE + extra):
                await nodes["A"].publish(TOPIC, b"%d" % i)
            await hub.wait_idle()
        assert len(pending(box)) == CHANNEL_SIZE
        assert hub.stats().nodes["B"].dropped == extra
        box.close()  # a closed subscription drops and can be replaced
        with trio.fail_after(5):
            await nodes["A"].publish(TOPIC, b"closed")
            await hub.wait_idle()
            again = await nodes["B"].subscribe(TOPIC)
            with pytest.raises(ValueError, match="already subscribed"):
                await nodes["B"].subscribe(TOPIC)
            await nodes["A"].publish(TOPIC, b"open")
            assert (await again.receive()).data == b"open"


async def random_mesh(
    hub: MemoryHub, stack: AsyncExitStack, count: int, seed: int
) -> list[MemoryNetwork]:
    """Each node dials three earlier ones: connected, mean degree about 6."""
    rng = random.Random(seed)
    nets = [await stack.enter_async_context(hub.open_node(f"n{i}")) for i in range(count)]
    for i, net in enumerate(nets[1:], start=1):
        for j in rng.sample(range(i), min(i, 3)):
            await net.connect(nets[j].listen_addrs()[0])
    return nets


async def flood(hub: MemoryHub, count: int, messages: int) -> tuple[HubStats, list[list[bytes]]]:
    async with AsyncExitStack() as stack:
        nets = await random_mesh(hub, stack, count, seed=1)
        boxes = [await net.subscribe(TOPIC) for net in nets]
        for i in range(messages):
            await nets[i % count].publish(TOPIC, b"m%d" % i)
        await hub.wait_idle()
        return hub.stats(), [pending(box) for box in boxes]


async def test_runs_repeat_for_a_seed() -> None:
    runs = [await flood(MemoryHub(loss=0.3, fanout=3, seed=7), 60, 20) for _ in range(2)]
    assert runs[0] == runs[1]
    other = await flood(MemoryHub(loss=0.3, fanout=3, seed=8), 60, 20)
    assert other != runs[0]


async def test_counters_add_up_under_loss_and_fanout() -> None:
    stats, received = await flood(MemoryHub(loss=0.2, fanout=2, seed=5), 80, 30)
    add_up(stats)
    assert stats.in_flight == 0
    assert stats.total.published == 30
    assert stats.total.delivered == sum(len(r) for r in received)
    assert 0 < stats.total.dropped < stats.total.sent
    for node in stats.nodes.values():  # fanout bounds each node's sends per message
        assert node.sent <= 2 * (node.delivered + node.published)


async def test_five_hundred_nodes_all_receive_within_bounded_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = MemoryHub(latency_s=0.01, jitter_s=0.01, seed=2)
    async with AsyncExitStack() as stack:
        nets = await random_mesh(hub, stack, 500, seed=2)
        boxes = [await net.subscribe(TOPIC) for net in nets]
        start = trio.current_time()
        with trio.fail_after(1.0):  # virtual seconds: ~50 hops' worth of latency
            await nets[0].publish(TOPIC, b"everyone")
            for box in boxes[1:]:
                assert (await box.receive()).data == b"everyone"
            await hub.wait_idle()
        assert trio.current_time() - start < 0.4  # about the graph's diameter times 20 ms
        stats = hub.stats()
        assert stats.total.delivered == 499 and stats.total.dropped == 0
        add_up(stats)


async def test_a_node_meets_the_network_role_and_its_limits() -> None:
    hub = MemoryHub()
    async with hub.open_node("A") as a:
        net: Network = a  # mypy checks the structural match
        assert net.peer_id == "A" and net.listen_addrs() == ["/memory/A"]
        with pytest.raises(ValueError, match="over"):
            await net.publish(TOPIC, b"x" * (MAX_MESSAGE_BYTES + 1))
        with pytest.raises(ValueError, match="already up"):
            async with hub.open_node("A"):
                pass
        with pytest.raises(ValueError, match="no '/'"):
            async with hub.open_node("a/b"):
                pass
