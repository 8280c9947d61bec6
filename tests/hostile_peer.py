"""A victim node and what a hostile peer sends it, for the attack tests: records signed with any
content (built as plain values, never through our models), raw envelopes and sync replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from node.identity import Identity
from node.loop import LoopConfig
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub, MemoryNetwork
from node.sim import settle
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Experiment, Outcome, Problem, canonical_encode
from sandbox import Evaluator, Runtime

VICTIM = Identity.from_seed(b"\x11" * 32)
ATTACKER = Identity.from_seed(b"\x66" * 32)


def signed_bytes(raw: dict[str, Any], identity: Identity = ATTACKER) -> bytes:
    """The full encoding of `raw` as a record authored and validly signed by `identity`."""
    unsigned = {**raw, "author": identity.peer_id}
    unsigned.pop("signature", None)
    signature = identity.sign(canonical_encode(unsigned))
    return canonical_encode({**unsigned, "signature": signature})


def envelope(*items: bytes) -> bytes:
    return canonical_encode({"v": 1, "records": list(items)})


def claim_fields(problem: Problem, strategy: dict[str, str], **fields: Any) -> dict[str, Any]:
    """An Experiment's fields claiming a score nobody can beat (so it would be replayed)."""
    honest = Experiment(
        problem=problem.id, strategy={"strategy.py": ""}, outcome=Outcome(status="ok", score=1e9)
    ).plain()
    return {**honest, "strategy": strategy, "created_ms": 1, **fields}


@asynccontextmanager
async def open_victim(
    hub: MemoryHub, runtime: Runtime, root: Path
) -> AsyncIterator[SwarmNode]:
    """A serving node whose evaluations and store live under `root`."""
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(hub.open_node(VICTIM.peer_id))
        store = stack.enter_context(RecordStore.open(root / "victim.sqlite", durable=False))

        def evaluator_for(problem: Problem):  # type: ignore[no-untyped-def]
            return stack.enter_context(Evaluator(runtime, problem, workdir=root)).evaluate

        node = SwarmNode(VICTIM, network, store, evaluator_for, OfflineMutator(),
                         NodeConfig(loop=LoopConfig(seed=1)))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


async def connect(hub: MemoryHub, attacker: MemoryNetwork, victim: SwarmNode) -> None:
    await attacker.connect(victim.network.listen_addrs()[0])
    await settle(hub, [victim])
