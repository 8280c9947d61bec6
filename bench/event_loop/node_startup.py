"""Finding: SwarmNode.__init__ runs on the trio thread after the libp2p network is open
(node/cli/swarm.py join: `async with open_libp2p_network(...)` then `SwarmNode(...)`), so peers
are already connected (bootstrap) while it runs. It:
  - store.load_dag(): reads every Problem record whole (up to 3 MiB each, any number posed);
  - _restore_ledger(): dag.records("verification") loads EVERY verification from the store
    (peers' too: their count and outcome size are the peers'), and for each of this node's own
    verifications dag.get(record.experiment) loads the replayed claim whole (a peer's strategy,
    up to 16 x 256,000 chars), keeping up to 2,048 of them cached.
No checkpoint: js-libp2p peers' pings (5 s) and noise/yamux handshakes wait for all of it.
(Since 2026-12-07g the verifications are read by `SwarmNode.restore_ledger`, in a worker thread
when `serve` starts: this script times both.)

Setup: the store of a node that replayed R claims of 250 KB (its own verifications) and holds
V peers' verifications with maximal outcomes (256 items, 256 details, 4,000-char stderr).

    .venv/bin/python bench/event_loop/node_startup.py [R] [V]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.identity import sign_record
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Outcome, Verification


def fat_outcome(k: int) -> Outcome:
    return Outcome(status="ok", score=1.0 + k, strategy_fuel=1, evaluator_fuel=1,
                   items={f"item{i:03d}_{'x' * 180}": bool(i % 2) for i in range(256)},
                   details={f"d{i:03d}_{'y' * 180}": "z" * 200 for i in range(256)},
                   stderr_tail="e" * 4000)


async def main(replayed: int, verifications: int) -> None:
    problem = common.posed_problem()
    t0 = time.perf_counter()
    claims = [common.experiment(problem, common.big_strategy(problem, k), k, None, score=2.0 + k)
              for k in range(replayed)]
    mine = [sign_record(Verification(experiment=c.id, outcome=c.outcome, match=True,
                                     created_ms=0), common.VICTIM) for c in claims]
    small = common.experiment(problem, "x = 1\n", 0, None, score=0.5)
    theirs = [sign_record(Verification(experiment=small.id, outcome=fat_outcome(k),
                                       match=bool(k % 2), created_ms=k),
                          common.ident(0x80 + k % 64))
              for k in range(verifications)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "victim.sqlite"
        common.fill_store(path, [problem, small], claims)
        common.fill_store(path, mine, theirs, batch=2000)
        print(f"setup: {replayed} replayed 250 KB claims, {verifications} peers' verifications"
              f" ({len(theirs[0].canonical_bytes()) // 1024 if theirs else 0} KiB each) in "
              f"{time.perf_counter() - t0:.0f} s")
        with RecordStore.open(path, durable=False) as store:
            async with MemoryHub().open_node(common.VICTIM.peer_id) as network:
                t = time.perf_counter()
                node = SwarmNode(common.VICTIM, network, store, lambda p: common.fake_evaluate,
                                 OfflineMutator(), NodeConfig())
                took = time.perf_counter() - t
                restore = getattr(node, "restore_ledger", None)  # absent before 2026-12-07g
                if restore is not None:  # in a worker thread: time the trio thread's share
                    t = time.perf_counter()
                    with common.measuring() as steps:
                        await restore()
                    print(f"restore_ledger() took {time.perf_counter() - t:.2f} s in a worker "
                          f"thread; the trio thread's longest steps meanwhile: {steps.report()}")
                print(f"SwarmNode(...) held the trio thread {took:.2f} s "
                      f"(ledger: {len(node.ledger.my_replays)} own replays, "
                      f"{len(node.ledger.votes)} experiments voted on; "
                      f"{node.dag.kept()} whole records now cached)")


if __name__ == "__main__":
    common.run(main, __doc__, R=500, V=2_000)
