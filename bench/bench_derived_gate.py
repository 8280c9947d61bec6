"""Measures what refusing forged derived records costs a node (node/knowledge.py, DerivedGate)
against what storing them cost before: both in one process, on the same fakes (patterns citing
3 x 256 ids that exist nowhere, the most a pattern cites), in a store-backed DAG on disk.

    .venv/bin/python bench/bench_derived_gate.py [--fakes 512] [--repeat 3]

Prints, per fake: the gate's check (a set lookup in this node's derivation, then a bounded id
memory), storing and indexing it as intake did before (store.add_many + dag.add), and the
one-off cost of the set of ids derived here (built once per curation from the derivation).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.knowledge import DerivedGate, NodeKnowledge  # noqa: E402
from node.store import RecordStore  # noqa: E402
from research_dag import DERIVED_AUTHOR, MAX_LIST, Pattern, Record  # noqa: E402


def _fakes(count: int, seed: int) -> list[Record]:
    rng = random.Random(seed)

    def ids() -> list[str]:
        return [f"{rng.getrandbits(256):064x}" for _ in range(MAX_LIST)]

    return [Pattern(mutation_kind="prune:feature_set", operation="prune",
                    affordance="feature_set", text="pruning always wins", supporting=ids(),
                    contradicting=ids(), control=ids(), success_rate=1.0, status="live",
                    author=DERIVED_AUTHOR, created_ms=n) for n in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fakes", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for run in range(args.repeat):
        fakes = _fakes(args.fakes, run)
        for record in fakes:  # decoding a received record caches its id (wire.py)
            assert record.id
        with tempfile.TemporaryDirectory() as folder, \
                RecordStore.open(Path(folder) / "s.sqlite", durable=False) as store:
            dag = store.load_dag(cache=2048)
            knowledge = NodeKnowledge(dag, lambda experiment: True)
            start = time.perf_counter()
            knowledge.curate()  # an empty DAG: the derivation's id set, built on first use
            knowledge.derived_here("00" * 32)
            derive_s = time.perf_counter() - start
            gate = DerivedGate(knowledge)
            gc.collect()  # the previous run's garbage is not the gate's cost
            start = time.perf_counter()
            refused = [record for record in fakes if not gate.admits(record)]
            gate_s = time.perf_counter() - start
            start = time.perf_counter()
            store.add_many(fakes)  # before: intake stored every fake ...
            for record in fakes:  # ... and indexed it, its cited ids as missing rows
                dag.add(record)
            store_s = time.perf_counter() - start
            missing = len(dag.missing())
        per = 1e6 / args.fakes
        print(f"run {run}: {len(refused)} fakes refused, gate {gate_s * per:.1f} us each;"
              f" stored before {store_s * per:.0f} us each ({missing} missing ids for sync);"
              f" gate/store {gate_s / store_s:.4f}; empty derivation {derive_s * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
