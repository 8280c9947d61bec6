"""Finding: serving a sync fetch (SyncService._records_for, in a worker thread) reads and
re-assembles EVERY requested record (up to MAX_FETCH_IDS = 1,024) before
encode_stored_records keeps the first ~4 MiB of them, and reads them 256 rows per hold of the
store's single lock (RecordStore._read_many: inflate each file's delta chain, re-hash). Any
peer may send the request (33 KB of ids). Meanwhile the trio thread blocks on that lock at its
next store access (intake: `record.id in dag`; dag.header; a round's dag.add...).

Setup: the victim holds N experiments of 4 x 250 KB files (as consider_history.py). A peer
asks for all N.

    .venv/bin/python bench/event_loop/sync_serve_lock.py [N]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.net.memory import MemoryHub


async def main(n: int) -> None:
    problem = common.posed_problem(common.package(4))
    records = [common.experiment(problem, common.big_strategy(problem, k), k, None, score=1.0 + k)
               for k in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        common.fill_store(Path(tmp) / "victim.sqlite", [problem], records)
        async with common.victim_node(Path(tmp), MemoryHub()) as node:
            ids = sorted(r.id for r in records)
            small = common.small_strategy(problem, "y = 1\n")
            # one gossip record arriving meanwhile
            other = common.experiment(problem, small, 10**6, None, score=0.1)
            with common.measuring() as steps:
                served = await common.serve_while_taking(node, ids, other, delay=0.3)
            print(f"intake of one small record took {served.take_s:.2f} s")
            print(f"a {served.request_bytes}-byte fetch of {n} ids: answered "
                  f"{served.answer_bytes / 2**20:.1f} MiB after {served.serve_s:.1f} s of "
                  f"reading; longest steps: {steps.report(3)}")


if __name__ == "__main__":
    common.run(main, __doc__, n=256)
