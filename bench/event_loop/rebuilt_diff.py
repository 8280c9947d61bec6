"""Finding (most severe): the record store recomputes a difflib unified diff of an experiment
against its parent (node/store_rows.py rebuilt_diff) when it WRITES one whose `diff` starts
with "--- a/" and whose parent is held, and on EVERY READ of one whose diff it left out because
it matched (REBUILT_DIFF). difflib is quadratic on a hostile pair of files within MAX_SOURCE,
and both happen under RecordStore's one lock (`locked()`):
  - a read on the trio thread (dag.get / dag.get_many: _consider_claim's parent, the claims
    _consider_history loads, ...) holds the loop itself for the whole diff;
  - a write (intake's add_many) or a read in a worker thread (a peer's sync fetch of the record,
    served by encoded_many; the loop's _load_history) holds the store lock, and the trio thread
    blocks on its next store access (any intake: `record.id in dag`, dag.header...).
The attacker sends two valid signed experiments (P, and C whose parent is P and whose diff is
exactly rebuilt_diff(P, C)); every node that stores C pays, and pays again for each read.

    .venv/bin/python bench/event_loop/rebuilt_diff.py [lines]
(lines=9000: ~10 s per diff here; 16,000 lines still fit MAX_SOURCE: ~4x longer)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.net.memory import MemoryHub
from node.store import RecordStore
from node.store_rows import rebuilt_diff
from research_dag import MAX_SOURCE


async def main(n: int) -> None:
    problem = common.posed_problem()
    path = problem.mutable[0]
    old = "".join(f"{i}\n" for i in range(n))
    new = "".join(f"{i}\nx{i}\n" for i in range(n))
    parent = common.experiment(problem, old, 1, None, score=0.5)
    t = time.perf_counter()
    diff = rebuilt_diff({path: old}, {path: new})
    one = time.perf_counter() - t
    child = common.resigned(common.experiment(problem, new, 2, parent.id, score=0.6), diff=diff)
    print(f"P: {len(old)} chars, C: {len(new)} chars, C.diff: {len(diff)} chars "
          f"(MAX_SOURCE {MAX_SOURCE}); one rebuilt_diff: {one:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "victim.sqlite"
        common.fill_store(db, [problem, parent])
        with RecordStore.open(db, durable=False) as store:
            t = time.perf_counter()
            store.add_many([child])  # what intake runs in a worker thread, under the store lock
            took = time.perf_counter() - t
            print(f"1. storing C (intake's add_many, store lock held): {took:.1f} s")
        # A fresh node over that store (after a restart, or once C left the 2,048-record cache).
        async with common.victim_node(Path(tmp), MemoryHub()) as node:
            # 2. Trio thread reads C itself: a child of C arrives (a sampled claim: parent read),
            #    _consider_claim(grandchild) -> dag.get(parent); called directly, as it happens.
            async def read_on_loop() -> None:
                node.dag.get(child.id)

            _, steps = await common.measured(read_on_loop, name="dag_get_on_trio")
            print(f"2. dag.get(C) on the trio thread: longest step {steps.report(1)}")

            # 3. A peer fetches C by sync (served in a worker thread); meanwhile intake on the
            #    trio thread touches the store: it waits for the lock.
            other = common.experiment(problem, "y = 2\n", 4, None, score=0.1)
            with common.measuring() as steps:
                served = await common.serve_while_taking(node, [child.id], other, delay=0.5)
            print(f"   intake of one small record waited {served.take_s:.1f} s")
            print(f"3. serving a sync fetch of C: longest steps {steps.report(3)}")


if __name__ == "__main__":
    common.run(main, __doc__, lines=9000)
