"""Soak: one node taking in signed experiments at full speed; what its memory and disk do as the
record count grows, and how long a late joiner takes to sync the whole history from it.

    .venv/bin/python bench/bench_soak.py [--records 20000] [--every 5000] [--batch 256]
                                         [--data-dir DIR]
    .venv/bin/python bench/bench_soak.py --examples 500

--examples N: disk per attempt on each bundled example instead: N attempts made by the offline
mutator (its real diffs, descriptions and mutation kinds; outcomes synthetic: nothing is
evaluated; their `changes` as the loop records them, unless --no-changes), each the child of
the best so far or of a recent attempt, stored in batches of 16 (a node's intake); bytes per
attempt after the first copy of each file (the database after a
checkpoint, minus the store holding only the problem and its baseline).

Records are synthetic but shaped like the loop's: chains of experiments on a bundled example,
each child differing from its parent by one line of strategy.py (a numeric constant), signed by
one of 8 authors, taken in through `SwarmNode.take` (the gossip intake path: durable store
first, then the DAG and the trust ledger) in batches of `--batch`. At every `--every` records it
prints the resident set (VmRSS), the store's bytes on disk (database + WAL), the intake rate
since the last line, and the seconds a fresh node takes to pull everything by sync over the
in-memory network (the same SyncService pages a libp2p peer gets; one pass, which stops at 30 s,
and how many records the joiner then holds). The node runs with the default NodeConfig, so the
figures are what `swarm join` keeps. RSS is read before each late joiner runs, but the joiners
live in the same process and the allocator keeps some of their memory: `--no-late` gives the
node's RSS alone.

Run it against an older checkout to compare (its node/ and research_dag/ come from that tree):

    git worktree add /tmp/before HEAD && cp bench/bench_soak.py /tmp/before/bench/
    .venv/bin/python /tmp/before/bench/bench_soak.py
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.identity import Identity, sign_record  # noqa: E402
from node.mutators import MutationContext, OfflineMutator  # noqa: E402
from node.net.memory import MemoryHub  # noqa: E402
from node.problem import load_package  # noqa: E402
from node.store import RecordStore  # noqa: E402
from node.swarm import NodeConfig, SwarmNode  # noqa: E402
from research_dag import Experiment, Outcome, Problem, encode_record  # noqa: E402

EXAMPLE = ROOT / "examples" / "search_ranking"
AUTHORS = [Identity.from_seed(bytes([n + 1]) * 32) for n in range(8)]
NUMBER = re.compile(r"(?<![\w.])\d+\.\d+")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


class Records:
    """Experiments as a loop makes them: a child of a recent one, one constant changed."""

    def __init__(self, problem: Problem, seed: int = 0) -> None:
        self.problem = problem
        self.rng = random.Random(seed)
        self.path = problem.mutable[0]
        baseline = sign_record(Experiment(
            problem=problem.id, strategy={self.path: problem.files[self.path].decode()},
            mutation_kind="baseline", outcome=Outcome(status="ok", score=0.5),
            author=AUTHORS[0].peer_id, created_ms=1), AUTHORS[0])
        assert isinstance(baseline, Experiment)
        self.baseline = baseline
        self.recent: list[tuple[str, str]] = [(baseline.id, self._text(baseline))]
        self.made = 0

    @staticmethod
    def _text(experiment: Experiment) -> str:
        return next(iter(experiment.strategy.values()))

    def next(self) -> Experiment:
        self.made += 1
        parent_id, text = self.rng.choice(self.recent[-64:])
        lines = text.splitlines(keepends=True)
        numbered = [i for i, line in enumerate(lines) if NUMBER.search(line)]
        i = self.rng.choice(numbered) if numbered else len(lines) - 1
        new_value = f"{self.rng.uniform(0.0, 10.0):.4f}"
        old = lines[i]
        lines[i] = NUMBER.sub(new_value, old, count=1) if NUMBER.search(old) else old + "#\n"
        child = "".join(lines)
        diff = f"@@ -{i + 1} +{i + 1} @@\n-{old.rstrip()}\n+{lines[i].rstrip()}\n"
        identity = AUTHORS[self.made % len(AUTHORS)]
        ok = self.rng.random() < 0.8
        experiment = sign_record(Experiment(
            problem=self.problem.id, parent=parent_id, strategy={self.path: child}, diff=diff,
            mutation_kind="perturb_constant", description=f"line {i + 1}: {new_value}",
            outcome=Outcome(status="ok", score=self.rng.random(), strategy_fuel=123_456_789,
                            evaluator_fuel=98_765_432) if ok else
            Outcome(status="crash", stderr_tail="Traceback (most recent call last):\n  ...\n"
                    "ValueError: bad constant\n"),
            author=identity.peer_id, created_ms=1_700_000_000_000 + self.made), identity)
        assert isinstance(experiment, Experiment)
        self.recent.append((experiment.id, child))
        if len(self.recent) > 256:
            del self.recent[:128]
        return experiment


def _node(identity: Identity, network: object, store: RecordStore) -> SwarmNode:
    def no_evaluator(problem: Problem):  # type: ignore[no-untyped-def]
        raise AssertionError("the soak node researches nothing")

    return SwarmNode(identity, network, store, no_evaluator, OfflineMutator(),  # type: ignore[arg-type]
                     NodeConfig(problems=()))


async def soak(records: int, every: int, batch: int, root: Path, late: bool) -> None:
    problem = load_package(EXAMPLE)
    hub = MemoryHub()
    maker = Records(problem)
    me = Identity.from_seed(b"\x42" * 32)
    path = root / "soak.sqlite"
    print(f"soak: {records} experiments on {problem.name}, batches of {batch};"
          f" figures every {every}", flush=True)
    print(f"{'records':>8} {'rss MB':>8} {'disk MB':>8} {'disk KB/rec':>11} {'rec/s':>7}"
          f" {'late sync s':>11} {'late got':>8}", flush=True)
    with RecordStore.open(path) as store:
        async with hub.open_node(me.peer_id) as network:
            node = _node(me, network, store)
            await node.take([problem, maker.baseline])
            held = 2
            base_disk = disk_bytes(path)
            started = time.perf_counter()
            taken_s = 0.0
            joiners = 0
            while held < records:
                chunk = [maker.next() for _ in range(min(batch, records - held))]
                began = time.perf_counter()
                held += await node.take(chunk)  # type: ignore[arg-type]
                taken_s += time.perf_counter() - began
                del chunk
                if held % every < batch or held >= records:
                    gc.collect()
                    rss = rss_mb()  # before a late joiner adds its own objects to the process
                    late_s, got = (await _late_join(hub, network.peer_id, root, joiners)
                                   if late else (0.0, 0))
                    joiners += 1
                    disk = disk_bytes(path)
                    print(f"{held:>8} {rss:>8.1f} {disk / 2**20:>8.1f}"
                          f" {(disk - base_disk) / 1024 / max(1, held - 2):>11.2f}"
                          f" {every / max(taken_s, 1e-9):>7.0f} {late_s:>11.2f} {got:>8}",
                          flush=True)
                    taken_s = 0.0
            print(f"total {time.perf_counter() - started:.0f} s", flush=True)


async def _late_join(hub: MemoryHub, peer: str, root: Path, n: int) -> tuple[float, int]:
    """A fresh node with an empty store pulls the whole history; its store is removed after."""
    identity = Identity.from_seed(bytes([200 + n % 50]) * 32)
    path = root / f"late-{n}.sqlite"
    with RecordStore.open(path, durable=False) as store:
        async with hub.open_node(f"{identity.peer_id}-{n}") as network:
            late = _node(identity, network, store)
            await network.connect(f"/memory/{peer}")
            began = time.perf_counter()
            await late.sync.sync_with(peer)  # one pass: 30 s at most (SYNC_TIMEOUT_S)
            seconds = time.perf_counter() - began
            got = len(late.dag)
    for leftover in root.glob(path.name + "*"):
        leftover.unlink()
    return seconds, got


def disk_per_attempt(attempts: int, root: Path, changes: bool = True) -> None:
    print(f"disk per attempt: {attempts} offline-mutator attempts per example"
          f"{', with their changes' if changes else ''}", flush=True)
    examples = ROOT / "examples"
    for package in sorted(p for p in examples.iterdir() if (p / "problem.toml").exists()):
        problem = load_package(package)
        rng = random.Random(7)
        author = AUTHORS[0]
        files = {name: problem.files[name].decode() for name in problem.mutable}
        baseline = sign_record(Experiment(problem=problem.id, strategy=files,
                                          outcome=Outcome(status="ok", score=0.5),
                                          author=author.peer_id, created_ms=1), author)
        assert isinstance(baseline, Experiment)
        path = root / f"{package.name}.sqlite"
        with RecordStore.open(path) as store:
            store.add_many([problem, baseline])
            first = _checkpointed_size(store, path)
            best, recent, pending = baseline, [baseline], []
            mutator = OfflineMutator()
            for n in range(attempts):
                parent = best if rng.random() < 0.7 else rng.choice(recent[-16:])
                proposal = mutator.propose_now(MutationContext(
                    problem=problem, best_files=dict(parent.strategy),
                    best_score=parent.outcome.score, rng=rng))
                ok = rng.random() < 0.8
                child = sign_record(Experiment(
                    problem=problem.id, parent=parent.id, strategy=proposal.files,
                    diff=proposal.diff, mutation_kind=proposal.mutation_kind,
                    description=proposal.description, mutator="offline",
                    changes=list(proposal.changes) or None if changes else None,
                    outcome=Outcome(status="ok", score=rng.random(), strategy_fuel=rng.randrange(
                        10**9), evaluator_fuel=rng.randrange(10**8)) if ok else Outcome(
                        status="crash", stderr_tail="Traceback (most recent call last):\n"
                        "  File \"strategy.py\", line 3\nValueError: bad value\n"),
                    author=author.peer_id, created_ms=2 + n), author)
                assert isinstance(child, Experiment)
                recent.append(child)
                pending.append(child)
                if ok and (child.outcome.score or 0) > (best.outcome.score or 0) * 1.02:
                    best = child
                if len(pending) == 16:
                    store.add_many(pending)
                    pending = []
            store.add_many(pending)
            total = _checkpointed_size(store, path)
        raw = sum(len(encode_record(r)) for r in recent[1:]) / attempts
        print(f"  {package.name:<16} {(total - first) / attempts / 1024:6.2f} KB per attempt"
              f" on disk (records themselves {raw / 1024:.2f} KB each)", flush=True)


def _checkpointed_size(store: RecordStore, path: Path) -> int:
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--examples", type=int, default=0, metavar="N")
    parser.add_argument("--no-late", action="store_true", help="no late joiners (RSS only)")
    parser.add_argument("--no-changes", action="store_true",
                        help="--examples: leave out `changes` (as attempts made before it existed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.data_dir or Path(scratch)
        if args.examples:
            disk_per_attempt(args.examples, root, not args.no_changes)
        else:
            trio.run(soak, args.records, args.every, args.batch, root, not args.no_late)


if __name__ == "__main__":
    main()
