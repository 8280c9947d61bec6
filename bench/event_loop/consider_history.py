"""Finding: ClaimReplays._consider_history (run by join_problems on the trio thread) loads the
picked claims with dag.get_many() 256 at a time (CONSIDERED_PER_CHECKPOINT) between
checkpoints. get_many reads each record from SQLite, inflates its files' zlib delta chains,
re-hashes and schema-validates it: for 250 KB strategies that is ~256 x 250 KB per step.
(It also lists every experiment header of the problem first, in the same step: see
join_candidates.py.)

Setup: the attacker's bigpkg problem and N claimed improvements, each with a distinct 250 KB
strategy, are in the victim's store (synced earlier; the DAG's cache is empty after a restart
or simply evicted by 2,048 newer records). The victim node starts and joins the problem.

    .venv/bin/python bench/event_loop/consider_history.py [N=260] [--files F=4]
Also measures phase 2 (a separate finding): _take -> _consider_claim -> dag.get(parent).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.net.memory import MemoryHub


async def main(n: int, files: int) -> None:
    problem = common.posed_problem(common.package(files))
    t0 = time.perf_counter()
    records = [common.experiment(problem, common.big_strategy(problem, k), k, None, score=100.0 + k)
               for k in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        common.fill_store(Path(tmp) / "victim.sqlite", [problem], records)
        took = time.perf_counter() - t0
        print(f"setup: {n} claims of {files} x 250 KB files stored in {took:.0f} s")
        async with common.victim_node(Path(tmp), MemoryHub()) as node:
            t = time.perf_counter()
            got = node.dag.get_many([r.id for r in records[:256]])
            print(f"dag.get_many(256 uncached claims) directly: "
                  f"{time.perf_counter() - t:.2f} s ({len(got)} records)")
            took, steps = await common.measured(node.join_problems, name="join_problems")
            print(f"join_problems (prepare, sync, _consider_history, curate): wall "
                  f"{took:.1f} s; queued claims {len(node.claims)}; "
                  f"longest steps: {steps.report(4)}")
            # Phase 2: small children, one per big stored claim, arrive in one sync response /
            # drain batch. _take -> _consider_claim -> dag.get(parent) reads each big parent
            # from the store on the trio thread (get_many above kept none).
            small = common.small_strategy(problem, "x = 1\n")
            children = [common.experiment(problem, small, 10_000 + k, r.id, score=0.5)
                        for k, r in enumerate(records)]
            took, steps = await common.measured(node.take, children, name="take")
            print(f"take({len(children)} small children of uncached big claims): wall "
                  f"{took:.1f} s; longest steps: {steps.report(3)}")


if __name__ == "__main__":
    common.run(main, __doc__, n=260, options={"--files": 4})
