"""Finding: SwarmNode.join_problems, called at the start of EVERY research_round, sorts the
wanted-but-not-joined problems by `_workers(p.id)` = len(dag.authors(p.id)), which builds the
header of every experiment of that problem (one SQL join over its whole history, a Header
object per row) on the trio thread, with no checkpoint. A node at max_problems (3) pays it
every round for every other wanted problem; a peer controls both how many problems exist and
how many experiments each has (sync pulls every problem's history: sync_scope() is None).

Setup (fast, by store.add_many): 3 small problems the victim joins, and 1 more problem with N
small experiments by one attacker. Then research_round() a few times.

    .venv/bin/python bench/event_loop/join_candidates.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.identity import sign_record
from node.loop import LoopConfig
from node.net.memory import MemoryHub
from node.swarm import NodeConfig
from research_dag import Problem


def problems(count: int) -> list[Problem]:
    base = common.posed_problem(common.small_package())
    out = []
    for i in range(count):
        p = sign_record(base.model_copy(update={"name": f"p{i}", "seed": i}),
                        common.ident(0x60 + i))
        assert isinstance(p, Problem)
        out.append(p)
    return out


async def main(n: int) -> None:
    joined = problems(4)
    crowded = joined[3]
    t0 = time.perf_counter()
    records = []
    parent = None
    for k in range(n):
        e = common.experiment(crowded, f"x = {k}\n", k, parent, score=0.1 + k * 1e-6)
        records.append(e)
        parent = e.id
    with tempfile.TemporaryDirectory() as tmp:
        common.fill_store(Path(tmp) / "victim.sqlite", joined, records, batch=5000)
        print(f"setup: {n} experiments of a 4th problem stored in {time.perf_counter() - t0:.0f} s")
        config = NodeConfig(loop=LoopConfig(seed=1), max_problems=3)
        async with common.victim_node(Path(tmp), MemoryHub(), config) as node:
            # join the 3 empty problems first (0 workers each: they sort first)
            t = time.perf_counter()
            await node.join_problems()
            print(f"joined {len(node.loops)} problems in {time.perf_counter() - t:.1f} s;"
                  f" crowded joined: {crowded.id in node.loops}")
            t = time.perf_counter()
            authors = node.dag.authors(crowded.id)
            print(f"dag.authors(crowded) directly: {time.perf_counter() - t:.2f} s "
                  f"({len(authors)} author)")
            _, steps = await common.measured(node.join_problems, name="join_problems", repeat=3)
            print(f"join_problems() x3 (as each research_round starts): longest steps "
                  f"{steps.report(3)}")


if __name__ == "__main__":
    common.run(main, __doc__, n=50_000)
