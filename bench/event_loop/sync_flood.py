"""Finding: a peer may ask a node for full sync fetches (1,024 ids, up to 4 MiB back) as fast as
it likes, on as many streams as it likes; each costs the node a worker thread reading the
records back from its store (~0.1 s per 1,024) and the bytes of the reply, and nothing was
counted per peer (docs/security.md, "Known gaps", before node/net/serve_budget.py).

Setup: a serving node holds N experiments shaped like the loop's (bench/bench_soak.py's
`Records` on examples/search_ranking, ~3.3 KB each). A late joiner (a fresh node, its own
store) pulls the whole history by sync, first alone, then while a flooder keeps `--tasks`
fetches of the first 1,024 ids open at once, asking again as soon as each is answered (a
refused one asks again after 10 ms, a remote peer's round trip). All three share this process
and its 2 cores, as a flooder's load would share the serving node's. Printed: the joiner's
seconds (passes back to back until one brings nothing more; a pass stops at 30 s), the flooder's
served bytes per second over the same span and its refusals, the server's counts when it has a
serve budget, and the longest event loop steps.

    .venv/bin/python bench/event_loop/sync_flood.py [N=20000] [--tasks 8] [--identities 1]

`--identities K`: the flood comes from K peer ids (identities are free to make), each keeping
`--tasks` fetches open; per-peer budgets alone then serve K times one peer's rate.
`--one-block`: the K identities come from one public /24 (as libp2p would see their
addresses), the joiner from another: the server budgets the block as one requester.

Before/after: run the same script in a worktree of an older commit (it imports only what both
have):

    git worktree add --detach /tmp/sync-before HEAD
    cp bench/event_loop/sync_flood.py /tmp/sync-before/bench/event_loop/
    (cd /tmp/sync-before && /work/main/.venv/bin/python bench/event_loop/sync_flood.py)
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common
from bench_soak import AUTHORS, EXAMPLE, Records

from node.identity import Identity
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub, MemoryNetwork
from node.net.network import SYNC_PROTOCOL, NetworkError
from node.net.wire import SyncFetch, encode_sync_request
from node.problem import load_package
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Problem, Record

JOINER = Identity.from_seed(b"\x4a" * 32)
BLOCK = "81.2.69.0/24"  # a public /24 the flood comes from (`--one-block`)
RETRY_S = 0.01  # a refused flooder asks again after about a remote round trip
PASSES = 5


@dataclass
class Flood:
    answered: int = 0
    refused: int = 0
    bytes: int = 0


def _node(identity: Identity, network: MemoryNetwork, store: RecordStore) -> SwarmNode:
    def no_evaluator(problem: Problem):  # type: ignore[no-untyped-def]
        raise AssertionError("the bench nodes research nothing")

    return SwarmNode(identity, network, store, no_evaluator, OfflineMutator(),
                     NodeConfig(problems=()))


async def late_join(hub: MemoryHub, server: SwarmNode, root: Path, name: str,
                    total: int) -> tuple[float, float, int, int]:
    """A fresh node pulls everything: seconds of its first pass, seconds until a pass brought
    nothing more (passes back to back, at most PASSES), passes, records held."""
    path = root / f"{name}.sqlite"
    with RecordStore.open(path, durable=False) as store:
        async with hub.open_node(f"{JOINER.peer_id}-{name}") as network:
            joiner = _node(JOINER, network, store)
            await network.connect(f"/memory/{server.me}")
            began = time.perf_counter()
            first = 0.0
            passes = 0
            while passes < PASSES:
                held = len(joiner.dag)
                await joiner.sync.sync_with(server.me)  # 0 when cut at 30 s: count what it holds
                passes += 1
                first = first or time.perf_counter() - began
                if len(joiner.dag) in (held, total):
                    break
            seconds, held = time.perf_counter() - began, len(joiner.dag)
            budget = getattr(server.sync, "budget", None)  # what the server paced it
            load = None if budget is None else budget.load(network.peer_id)
            if load is not None:
                print(f"  ({name}: the server paced {load.paced} of its requests)")
    for leftover in root.glob(path.name + "*"):
        leftover.unlink()
    return first, seconds, passes, held


async def keep_asking(network: MemoryNetwork, server: str, ids: list[str], tasks: int,
                      got: Flood) -> None:
    request = encode_sync_request(SyncFetch(ids=ids))

    async def one() -> None:
        while True:
            try:
                reply = await network.request(server, SYNC_PROTOCOL, request)
            except NetworkError:
                got.refused += 1
                await trio.sleep(RETRY_S)
                continue
            got.answered += 1
            got.bytes += len(reply)

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(one)


async def main(n: int, tasks: int, identities: int, one_block: bool) -> None:
    problem = load_package(EXAMPLE)
    maker = Records(problem)
    t0 = time.perf_counter()
    records: list[Record] = [maker.next() for _ in range(n - 2)]
    print(f"{n} records of {problem.name} made in {time.perf_counter() - t0:.1f} s")
    hub = MemoryHub()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        common.fill_store(root / "server.sqlite", [problem, maker.baseline], records, batch=256)
        ids = sorted([problem.id, maker.baseline.id, *(r.id for r in records)])[:1024]
        # No node holds the records this script made: kept, every full collection the
        # flood's garbage sets off would walk them (a step of 100-400 ms, a bench artifact).
        del records
        gc.collect()
        with RecordStore.open(root / "server.sqlite", durable=False) as store:
            async with hub.open_node(AUTHORS[0].peer_id) as network:
                server = _node(AUTHORS[0], network, store)
                first, alone, passes, held = await late_join(hub, server, root, "alone", n)
                print(f"joiner alone: {alone:.1f} s in {passes} pass(es), first pass "
                      f"{first:.1f} s, holds {held} of {n}")
                got = Flood()
                async with AsyncExitStack() as stack:
                    nursery = await stack.enter_async_context(trio.open_nursery())
                    for k in range(identities):
                        flooder = await stack.enter_async_context(hub.open_node(
                            f"flooder{k}", BLOCK if one_block else None))
                        await flooder.connect(f"/memory/{server.me}")
                        nursery.start_soon(keep_asking, flooder, server.me, ids, tasks, got)
                    await trio.sleep(1.0)  # the flood under way
                    before = got.bytes
                    with common.measuring() as steps:
                        first, flooded, passes, held = await late_join(
                            hub, server, root, "flooded", n)
                    rate = (got.bytes - before) / flooded
                    nursery.cancel_scope.cancel()
                print(f"joiner during the flood ({identities} x {tasks} fetches of 1,024 ids open"
                      " at once): "
                      f"{flooded:.1f} s in {passes} pass(es), first pass {first:.1f} s, holds "
                      f"{held} of {n}")
                print(f"flooders: served {rate / 2**20:.1f} MiB/s while the joiner synced; "
                      f"{got.answered} replies ({got.bytes / 2**20:.0f} MiB), "
                      f"{got.refused} refused")
                budget = getattr(server.sync, "budget", None)
                if budget is not None:
                    print(f"server's serve counts: {budget.by_reason()}")
                print(f"longest steps during the flooded sync: {steps.report(3)}")


if __name__ == "__main__":
    common.run(main, __doc__, n=20000, options={"--tasks": 8, "--identities": 1},
               flags=["--one-block"])
