"""Finding (a red team, 2026-12-08): votes (Verifications) stored before the experiment they
vote on are noted when it comes; that was done on the event loop, 256 votes read and decoded
per experiment: 256 votes with 2 KB stderr tails on each of 128 experiments held the loop
5.2 s when the experiments came (js-libp2p drops a peer whose ping takes 5 s). Now every
stored vote is read a page at a time in a worker thread.

    .venv/bin/python bench/event_loop/stored_votes.py [experiments] [votes] [tail_chars]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.identity import sign_record
from node.net.memory import MemoryHub
from research_dag import Experiment, Outcome, Verification


async def main(experiments: int, votes: int, tail_chars: int) -> None:
    problem = common.posed_problem()
    claims = [common.experiment(problem, f"x = {n}\n", n, None, 1.0) for n in range(experiments)]
    voter = common.ident(0x55)
    started = time.perf_counter()
    stored = [sign_record(Verification(
        experiment=claim.id, outcome=Outcome(status="ok", stderr_tail="x" * tail_chars),
        match=False, created_ms=1 + k), voter) for claim in claims for k in range(votes)]
    print(f"{len(stored)} votes signed in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        async with common.victim_node(Path(tmp), MemoryHub()) as node:
            await node.take([problem])
            for start in range(0, len(stored), 1024):  # stored, their experiments not held
                await node.take(stored[start:start + 1024])
            took, steps = await common.measured(node.take, claims, name="take")
            noted = sum(len(v) for k, v in node.ledger.votes.items()
                        if any(isinstance(c, Experiment) and c.id == k for c in claims))
            print(f"took the {len(claims)} experiments in {took:.2f} s; longest steps:"
                  f" {steps.report(2)}; votes noted {noted}")


if __name__ == "__main__":
    common.run(main, __doc__, experiments=128, votes=256, tail_chars=2000)
