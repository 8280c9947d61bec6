"""Partitions through `Network.block` (the simulator's one code path for both networks): records
stop crossing, healing lets anti-entropy sync converge both sides; blocked libp2p peers are
refused both ways; and the gossip message cache is keyed by our content-hash message id."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio
from libp2p.pubsub.pb import rpc_pb2

from node.identity import Identity
from node.mutators import OfflineMutator
from node.net.libp2p import Libp2pNetwork, open_libp2p_network
from node.net.libp2p_host import _ContentKeyedCache
from node.net.memory import MemoryHub
from node.net.network import SYNC_PROTOCOL, NetworkError
from node.sim import NetworkKind, Partition, open_network
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Problem

STEP_S = 20.0  # bound on each step that waits for the network
POLL_S = 0.05  # for conditions with no event to wait on (a record stored, a link gone)
TOPIC = "/swarm/1/test"


def _identity(index: int) -> Identity:
    return Identity.from_seed(bytes([index + 120]) * 32)


@asynccontextmanager
async def _nodes(kind: NetworkKind, count: int, path: Path) -> AsyncIterator[list[SwarmNode]]:
    hub = MemoryHub()
    async with AsyncExitStack() as stack:
        nodes = []
        for index in range(count):
            identity = _identity(index)
            network = await stack.enter_async_context(open_network(kind, hub, identity))
            store = stack.enter_context(RecordStore.open(path / f"{index}.sqlite"))

            def no_evaluations(problem: Problem) -> None:
                raise AssertionError("this test runs no research")

            node = SwarmNode(identity, network, store, no_evaluations, OfflineMutator(),
                             NodeConfig())
            nursery = await stack.enter_async_context(trio.open_nursery())
            stack.callback(nursery.cancel_scope.cancel)
            await nursery.start(node.serve)
            nodes.append(node)
        yield nodes


async def _until(condition: object) -> None:
    assert callable(condition)
    with trio.fail_after(STEP_S):
        while not condition():
            await trio.sleep(POLL_S)


def _ids(node: SwarmNode) -> set[str]:
    return {record.id for record in node.dag.records()}


@pytest.mark.parametrize("kind", ["memory", "libp2p"])
async def test_a_partition_stops_records_crossing_and_healing_lets_sync_converge(
    kind: NetworkKind, probe_problem: Problem, tmp_path: Path
) -> None:
    async with _nodes(kind, 4, tmp_path) as nodes:
        for a, b in ((0, 1), (1, 2), (2, 3), (3, 0)):  # a ring: two links cross each split
            await nodes[a].network.connect(nodes[b].network.listen_addrs()[0])
        up = {index: node.network for index, node in enumerate(nodes)}
        partition = Partition([node.me for node in nodes])
        await partition.split(up)  # {0, 1} | {2, 3}
        assert partition.other_half(1) == {nodes[2].me, nodes[3].me}
        left = await nodes[0].pose(probe_problem)
        right = await nodes[2].pose(probe_problem)  # another author: another record
        for node in nodes:  # sync across would carry the records over, were a link left
            await node.sync_with_peers()
        await _until(lambda: left.id in nodes[1].dag and right.id in nodes[3].dag)
        assert not {left.id} & (_ids(nodes[2]) | _ids(nodes[3]))
        assert not {right.id} & (_ids(nodes[0]) | _ids(nodes[1]))
        assert set(nodes[1].network.connected_peers()) == {nodes[0].me}
        with pytest.raises(NetworkError):
            await nodes[1].network.connect(nodes[2].network.listen_addrs()[0])
        with pytest.raises(NetworkError):
            await nodes[1].network.request(nodes[2].me, SYNC_PROTOCOL, b"")
        await partition.heal(up)
        assert nodes[2].me in nodes[1].network.connected_peers()  # the cut link, redialed
        everything = {left.id, right.id}
        for node in nodes:  # sync on connect has started; one more pass, as the swarm runs
            await node.sync_with_peers()
        await _until(lambda: all(_ids(node) == everything for node in nodes))


async def test_a_blocked_libp2p_peer_is_refused_even_when_it_dials_in() -> None:
    async with open_libp2p_network(bytes([131]) * 32) as a, \
            open_libp2p_network(bytes([132]) * 32) as b:
        await a.block([b.peer_id])  # one-sided: b does not block a
        await b.connect(a.listen_addrs()[0])  # accepted by TCP and Noise, then closed by a
        await _until(lambda: not _linked(a, b) and not _linked(b, a))
        assert b.peer_id not in a.connected_peers()
        with pytest.raises(NetworkError):
            await b.request(a.peer_id, SYNC_PROTOCOL, b"")
        a.unblock([b.peer_id])
        await b.connect(a.listen_addrs()[0])
        await _until(lambda: b.peer_id in a.connected_peers())


def _linked(network: Libp2pNetwork, other: Libp2pNetwork) -> bool:
    return other.peer_id in {peer.to_base58() for peer in network._host.get_connected_peers()}


def test_the_gossip_cache_keys_messages_by_content_hash_for_ihave_and_iwant() -> None:
    cache = _ContentKeyedCache(window_size=3, history_size=5)
    first = rpc_pb2.Message(from_id=b"peer-a", seqno=b"\x00\x01", data=b"record", topicIDs=[TOPIC])
    echo = rpc_pb2.Message(from_id=b"peer-b", seqno=b"\x00\x07", data=b"record", topicIDs=[TOPIC])
    other = rpc_pb2.Message(from_id=b"peer-a", seqno=b"\x00\x02", data=b"other", topicIDs=[TOPIC])
    for message in (first, echo, other):
        cache.put(message)
    record_id, other_id = hashlib.sha256(b"record").digest(), hashlib.sha256(b"other").digest()
    assert cache.window(TOPIC) == [record_id, other_id]  # what IHAVE advertises
    assert cache.get(record_id) is first  # what IWANT finds; the same content is kept once
    assert cache.get(b"peer-a" + b"\x00\x01") is None  # not py-libp2p's from + seqno
    for _ in range(5):
        cache.shift()
    assert cache.window(TOPIC) == [] and cache.get(record_id) is None


async def test_the_router_uses_the_content_keyed_cache() -> None:
    async with open_libp2p_network(bytes([133]) * 32) as network:
        await network.subscribe(TOPIC)
        await network.publish(TOPIC, b"cached")
        assert isinstance(network._router.mcache, _ContentKeyedCache)
        assert network._router.mcache.window(TOPIC) == [hashlib.sha256(b"cached").digest()]
