"""Finding: NodeIntake._drain re-decodes gossip envelopes on the trio thread, up to 256 of them
in one task step, because DecodedMessages keeps only NODE_MESSAGES (64) envelopes / 8 MiB.

libp2p runs the validator (`_validate`: decode + schema + Ed25519 of each record) once per
message, each in its own task step, and hands the message to the topic's channel (256 deep).
`_drain` then takes the first message plus up to 255 more with receive_nowait() and calls
`_pushed()` on each -> `decoded.envelope(data)`. Only the newest 64 envelopes are still
remembered: the others are decoded and signature-checked again, all within one step,
followed by `take()` of up to 16,384 records (see the audit's intake batch finding).

We reproduce exactly what libp2p does: validate each envelope (one step each), queue it in a
256-deep channel, then let `_drain` run. Envelopes: 64 signed experiments each, valid.

    .venv/bin/python bench/event_loop/gossip_drain.py [envelopes] [desc_chars]
                                                      [--applied] [--concurrent]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.net import problem_topic
from node.net.memory import MemoryHub
from node.net.network import GossipMessage
from node.net.wire import encode_batch
from research_dag import Experiment


async def main(envelopes: int, desc: int, applied: bool, concurrent: bool) -> None:
    problem = common.posed_problem()
    t0 = time.perf_counter()
    chain: list[Experiment] = []
    parent = None
    for n in range(envelopes * 64):
        exp = common.experiment(problem, f"x = {n}\n", n, parent, score=0.1 + n * 1e-6)
        if desc:
            exp = common.resigned(exp, description=(f"d{n} " * desc)[:desc], hypothesis="h" * desc)
        if applied:  # cites 16 patterns, a hypothesis, a transcript (random ids: never held)
            exp = common.resigned(exp, applied=[common.random_id() for _ in range(16)],
                                  hypothesis_id=common.random_id(),
                                  transcript=common.random_id())
        chain.append(exp)
        parent = exp.id
    datas = [env for start in range(0, len(chain), 64)
             for env in encode_batch(chain[start:start + 64])]
    print(f"{len(datas)} envelopes of {len(chain) // len(datas)} records, "
          f"{sum(map(len, datas)) / len(datas) / 1024:.0f} KiB each; made in "
          f"{time.perf_counter() - t0:.1f} s")
    topic = problem_topic(problem.id)
    with tempfile.TemporaryDirectory() as tmp:
        async with common.victim_node(Path(tmp), MemoryHub()) as node:
            await node.take([problem])
            await node.join_problems()
            send, receive = trio.open_memory_channel[GossipMessage](256)

            async def validate_all() -> None:  # libp2p: one push_msg task per message
                dropped = 0
                for data in datas:
                    assert node._validate(topic, common.ATTACKER.peer_id, data)
                    try:  # as Libp2pNetwork._deliver: a full channel drops the message
                        send.send_nowait(GossipMessage(topic, common.ATTACKER.peer_id, data))
                    except trio.WouldBlock:
                        dropped += 1
                    await trio.lowlevel.checkpoint()
                await send.aclose()
                print(f"dropped (channel full): {dropped}")

            with common.measuring() as steps:
                t = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    if concurrent:  # drain runs as messages arrive (a flood meets a busy store)
                        nursery.start_soon(node._drain, receive, name="_drain")
                        await validate_all()
                    else:  # 256 arrived while the previous batch was being stored
                        await validate_all()
                        nursery.start_soon(node._drain, receive, name="_drain")
                took = time.perf_counter() - t
            print(f"validated and drained in {took:.1f} s; received "
                  f"{node.stats.received}; longest steps: {steps.report(3)}")
            print(f"decoded memo: hits {node.decoded.hits}, misses {node.decoded.misses}")


if __name__ == "__main__":
    common.run(main, __doc__, envelopes=256, desc_chars=0, flags=("--applied", "--concurrent"))
