"""The nodes of a simulation: who each is (its identity; liar, spammer or churner), the network
it opens (in memory or libp2p), and waiting until gossip and intake have settled."""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import trio
import trio.testing

from node.identity import Identity
from node.net import MemoryHub, Network
from node.sim.config import NetworkKind, SimConfig
from node.swarm import SwarmNode


@dataclass
class SimNode:
    index: int
    identity: Identity
    liar: bool
    spammer: bool
    churn_at: int | None  # round it crashes (comes back `down_for` rounds later)
    node: SwarmNode | None = None
    reached: int | None = None  # round its best met the target
    best: list[float | None] = field(default_factory=list)


def _identity(seed: int, index: int) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"swarm-sim:{seed}:{index}".encode()).digest())


def plan_nodes(config: SimConfig) -> list[SimNode]:
    rng = random.Random(config.seed)
    count = config.nodes
    liars = set(rng.sample(range(1, count), min(count - 1, round(config.faults.liars * count))))
    spammers = set(rng.sample(range(1, count), min(count - 1, round(config.faults.spam * count))))
    churners = rng.sample(range(1, count), min(count - 1, round(config.faults.churn * count)))
    churn_at = {i: rng.randrange(1, max(2, config.rounds // 2)) for i in churners}
    # Node 0 is always honest and steady: it poses the problems.
    return [
        SimNode(i, _identity(config.seed, i), i in liars, i in spammers, churn_at.get(i))
        for i in range(count)
    ]


@contextlib.asynccontextmanager
async def open_network(
    kind: NetworkKind, hub: MemoryHub | None, identity: Identity
) -> AsyncIterator[Network]:
    if kind == "memory":
        assert hub is not None
        async with hub.open_node(identity.peer_id) as network:
            yield network
    else:
        from node.net import open_libp2p_network

        async with open_libp2p_network(identity.private_key) as network:
            yield network


async def settle(hub: MemoryHub | None, nodes: Iterable[SwarmNode], cushion: float = 0.0
                 ) -> None:
    """Let gossip and intake finish: the hub has nothing in flight, every task is blocked,
    and no node is still storing what it received (intake writes in a worker thread)."""
    nodes = list(nodes)
    while True:
        if hub is not None:
            await hub.wait_idle()
        await trio.testing.wait_all_tasks_blocked(cushion)
        if not any(node.busy for node in nodes) and (hub is None or not hub.stats().in_flight):
            return
        await trio.sleep(0.001)  # a worker thread is writing: let it finish
