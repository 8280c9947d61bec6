"""Finding: a SIGNED Pattern (author = a peer, not DERIVED_AUTHOR) pushed by gossip on the
problems topic (every node subscribes) is checked by intake.refusal -> derived_refusal before
DerivedGate drops it as "underived": one dag.header() per cited id, i.e. one SQLite query each
(RecentHeaders only answers ids it has seen or that sync's prefetch marked absent), on the
trio thread, inside _take's first loop (no checkpoint). A Pattern may cite 256 supporting +
256 contradicting + 256 control + 32 problems + 1 supersedes = 801 ids (~53 KB); a 512 KiB
envelope holds 9; _drain hands up to 256 envelopes to one take(). Random ids contradict
nothing, so the sender is never charged (only DERIVED_AUTHOR pushes count toward
PUSH_ALLOWANCE), and nothing is stored.

    .venv/bin/python bench/event_loop/signed_patterns.py [envelopes]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.identity import sign_record
from node.net import PROBLEMS_TOPIC
from node.net.memory import MemoryHub
from node.net.network import GossipMessage
from node.net.wire import encode_batch
from research_dag import Pattern


def pattern(n: int) -> Pattern:
    p = Pattern(mutation_kind="perturb:weight_vector", text=f"p{n}",
                supporting=[common.random_id() for _ in range(256)],
                contradicting=[common.random_id() for _ in range(256)],
                control=[common.random_id() for _ in range(256)],
                problems=[common.random_id() for _ in range(32)],
                supersedes=common.random_id(), created_ms=n)
    signed = sign_record(p, common.ATTACKER)
    assert isinstance(signed, Pattern)
    return signed


async def main(envelopes: int) -> None:
    records = [pattern(n) for n in range(envelopes * 9)]
    datas = encode_batch(records)
    print(f"{len(datas)} envelopes, {len(records) // len(datas)} signed patterns each, "
          f"{sum(map(len, datas)) // len(datas) // 1024} KiB each")
    with tempfile.TemporaryDirectory() as tmp:
        async with common.victim_node(Path(tmp), MemoryHub()) as node:
            await node.take([common.posed_problem()])
            send, receive = trio.open_memory_channel[GossipMessage](256)
            for data in datas:  # validated one per step by libp2p (cheap here: decode only)
                assert node._validate(PROBLEMS_TOPIC, common.ATTACKER.peer_id, data)
                send.send_nowait(GossipMessage(PROBLEMS_TOPIC, common.ATTACKER.peer_id, data))
            await send.aclose()
            took, steps = await common.measured(node._drain, receive, name="_drain")
            print(f"drained in {took:.1f} s; longest steps: {steps.report(2)};"
                  f" stored {node.stats.received}, drops {node.stats.drops.by_reason()}, "
                  f"attacker standing {node.ledger.standing_of(common.ATTACKER.peer_id)}, "
                  f"gossip score {node.network.score(common.ATTACKER.peer_id)}")


if __name__ == "__main__":
    common.run(main, __doc__, envelopes=128)
