"""Check (fine): a research round's own trio-thread work on a 11-file, 11 x 250 KB (2.8 MiB,
under the package limit) problem (proposal in worker threads since 363c6e8; what stays:
validation, sealing, digests, publish).

    .venv/bin/python bench/event_loop/loop_step.py [rounds]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.net.memory import MemoryHub


async def main(rounds: int) -> None:
    problem = common.posed_problem(common.wide_package(11))
    print(f"problem: {len(problem.mutable)} mutable files, "
          f"{sum(len(problem.files[m]) for m in problem.mutable) / 2**20:.1f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        async with common.victim_node(Path(tmp), MemoryHub()) as node:
            await node.take([problem])
            took, steps = await common.measured(node.research_round, name="research_round",
                                                repeat=rounds)
            print(f"{rounds} rounds in {took:.0f} s, {node.stats.evaluations}"
                  f" evaluations; longest steps: {steps.report(3)}")


if __name__ == "__main__":
    common.run(main, __doc__, rounds=6)
