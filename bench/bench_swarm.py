"""Swarm figures, as ratios against baselines run in the same process.

    .venv/bin/python bench/bench_swarm.py [--quick]
                                          [--only rounds,diversity,liars,scale,propagation]
                                          [--seeds N] [--cap-one ROUNDS] [--compose SHARE]

- rounds: evaluation rounds until the swarm first reaches the target, 1 vs 4 vs 16 nodes on
  the same problem (median over seeds); the ratio 1-node / N-node (team goal: >= 12x at 16).
  Runs stop at the target; a run still short of it at its cap is reported as censored.
- diversity: what 16 nodes spend their evaluations on (issue 14): per seed, rounds to target,
  evaluations and distinct candidates among them (the rest repeat a peer's or their own), the
  share of the peers' experiments a node's model observed (vouching), and the compositions
  (the round's other improving moves added to the best: node/mutators/compose.py) and how
  many improved.
- liars: 16 nodes, 30 % of them liars: fake claims honest nodes accepted (goal 0) and the
  honest slowdown (rounds with liars / rounds without).
- scale: the most nodes one simulator process holds: start-up, then wall and CPU time per
  round and peak memory (each size in a fresh process), for the in-memory network and for
  real libp2p hosts on 127.0.0.1.
- propagation: 25 libp2p nodes; time for a new record to reach every node (p50/p99; goal
  p99 <= 1 s) and the share delivered by gossip alone and with one sync pass (goal 100 %).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import random
import resource
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.identity import Identity, sign_record  # noqa: E402
from node.mutators import OfflineMutator  # noqa: E402
from node.problem import load_package  # noqa: E402
from node.sim import Faults, SimConfig, Simulation  # noqa: E402
from node.store import RecordStore  # noqa: E402
from node.swarm import NodeConfig, SwarmNode  # noqa: E402
from research_dag import Experiment, Outcome, Problem  # noqa: E402
from sandbox import Runtime, load_runtime  # noqa: E402

HARD = ROOT / "examples" / "finance_factors"
CHEAP = ROOT / "tests" / "fixtures" / "probe"


def _simulate(runtime: Runtime, problem: Problem, nodes: int, seed: int, rounds: int,
              faults: str = "", network: str = "memory") -> dict[str, Any]:
    config = SimConfig(nodes=nodes, problems=(problem,), rounds=rounds, seed=seed,
                       faults=Faults.parse(faults),
                       network="libp2p" if network == "libp2p" else "memory")
    return trio.run(Simulation(config, runtime).run)


def _rounds_to_target(report: dict[str, Any], cap: int) -> int:
    first = report["swarm"]["first_reached_target_round"]
    return cap + 1 if first is None else int(first)  # not reached: counted as cap + 1


def bench_rounds(runtime: Runtime, seeds: int, caps: dict[int, int], first: int = 0) -> None:
    """Runs stop at the target, so a generous cap costs only the runs that need it; a run
    still short of the target at its cap is censored (counted as cap + 1) and reported."""
    problem = load_package(HARD)
    medians: dict[int, float] = {}
    censored_median: set[int] = set()
    for nodes, cap in caps.items():
        started = time.perf_counter()
        rounds = [_rounds_to_target(_simulate(runtime, problem, nodes, seed, cap), cap)
                  for seed in range(first, first + seeds)]
        medians[nodes] = statistics.median(rounds)
        censored = sum(1 for r in rounds if r > cap)
        if 2 * censored >= len(rounds):  # else exact: the censored runs sort last
            censored_median.add(nodes)
        print(f"rounds       {problem.name}: {nodes:>2} node(s): rounds to target {rounds} "
              f"(median {medians[nodes]}; {censored} of {len(rounds)} censored at {cap}; "
              f"{time.perf_counter() - started:.0f} s)", flush=True)
    for nodes in [size for size in caps if size != 1 and 1 in medians]:
        bound = (" (a lower bound: the 1-node median is censored)" if 1 in censored_median
                 else " (an upper bound: this median is censored)" if nodes in censored_median
                 else "")
        print(f"rounds       1 node / {nodes} nodes = {medians[1] / medians[nodes]:.1f}x fewer "
              f"rounds{' (goal >= 12x)' if nodes == 16 else ''}{bound}", flush=True)


def bench_diversity(runtime: Runtime, seeds: int, nodes: int, cap: int) -> None:
    from node.mutators.memory import COMBINE, family_of
    from node.mutators.structure import digest_of

    problem = load_package(HARD)
    for seed in range(seeds):
        held: dict[str, Any] = {}

        async def finish(simulation: Simulation, held: dict[str, Any] = held) -> None:
            own: list[Experiment] = []
            shares = []
            for sim in simulation.plan:
                node = sim.node
                loop = None if node is None else node.loops.get(simulation.problem.id)
                if node is None or loop is None or loop.search is None:
                    continue
                records = [r for r in node.store.iter_records(
                    kind="experiment", problem=simulation.problem.id) if isinstance(r, Experiment)]
                peers = [r for r in records if r.author != node.me]
                own += [r for r in records if r.author == node.me and r.parent is not None]
                held.setdefault("scores", {}).update(
                    (r.id, r.outcome.score) for r in records if r.author == node.me)
                observed = sum(1 for r in peers if loop.search.memory.holds(r.id))
                shares.append(observed / max(1, len(peers)))
            held["own"], held["shares"] = own, shares

        config = SimConfig(nodes=nodes, problems=(problem,), rounds=cap, seed=seed)
        report = trio.run(Simulation(config, runtime, finish=finish).run)
        own = held["own"]
        distinct = len({digest_of(e.strategy) for e in own})
        scores = held["scores"]
        combined = [e for e in own if e.mutation_kind == COMBINE]
        improved = sum(1 for e in combined if e.outcome.score is not None
                       and problem.metric.better(e.outcome.score, scores.get(e.parent or "")))
        families = {f: sum(1 for e in own if family_of(e.mutation_kind, e.mutator) == f)
                    for f in ("model", "structural", "perturb")}
        print(f"diversity    {problem.name}: {nodes} nodes, seed {seed}: rounds to target "
              f"{_rounds_to_target(report, cap)}; {len(own)} evaluations, {distinct} distinct "
              f"({100 * (len(own) - distinct) / max(1, len(own)):.0f} % repeats); peers' "
              f"experiments observed {100 * statistics.median(held['shares']):.0f} % (median "
              f"node); families {families}; compositions {len(combined)}, {improved} improved "
              f"on their parent", flush=True)


def bench_liars(runtime: Runtime, seeds: int, cap: int) -> None:
    problem = load_package(HARD)
    clean, lying, accepted, fakes = [], [], 0, 0
    for seed in range(seeds):
        clean.append(_rounds_to_target(_simulate(runtime, problem, 16, seed, cap), cap))
        report = _simulate(runtime, problem, 16, seed, cap, faults="liars=0.3")
        lying.append(_rounds_to_target(report, cap))
        accepted += report["swarm"]["accepted_fake_claims"]
        fakes += report["swarm"]["fake_claims"]
    slowdown = statistics.median(lying) / statistics.median(clean)
    print(f"liars        16 nodes, 30 % liars: {accepted} of {fakes} fake claims accepted "
          f"(goal 0); honest rounds to target {lying} vs {clean} without liars: slowdown "
          f"{slowdown:.2f}x", flush=True)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _scale_point(network: str, nodes: int, rounds: int) -> dict[str, float]:
    """One simulation in a fresh process (so peak RSS is its own): wall and CPU seconds to the
    end of round 1 (start-up: hosts, connections, posing, joining) and per later round."""
    runtime = load_runtime()
    problem = load_package(CHEAP)
    config = SimConfig(nodes=nodes, problems=(problem,), rounds=rounds, seed=0,
                       network="libp2p" if network == "libp2p" else "memory",
                       stop_at_target=False)  # the probe's target is met within 3 rounds
    marks: list[tuple[float, float]] = [(time.perf_counter(), _cpu_s())]
    records = [0]

    def on_round(_: int, simulation: Simulation) -> None:
        marks.append((time.perf_counter(), _cpu_s()))
        records[0] = max(len(s.node.dag) for s in simulation.plan if s.node is not None)

    report = trio.run(Simulation(config, runtime, on_round=on_round).run)
    later = max(1, len(marks) - 2)
    return {
        "rounds": report["rounds_run"],
        "startup_s": marks[1][0] - marks[0][0],
        "round_s": (marks[-1][0] - marks[1][0]) / later,
        "round_cpu_s": (marks[-1][1] - marks[1][1]) / later,
        "records": records[0],
        "rss_mb": _rss_mb(),
    }


def bench_scale(sizes: list[int], libp2p_sizes: list[int], rounds: int) -> None:
    context = multiprocessing.get_context("spawn")
    for network, counts in (("memory", sizes), ("libp2p", libp2p_sizes)):
        for nodes in counts:
            with context.Pool(1) as pool:
                point = pool.apply(_scale_point, (network, nodes, rounds))
            print(f"scale        {network}: {nodes:>5} nodes, {point['rounds']:.0f} rounds: "
                  f"start-up + round 1 {point['startup_s']:6.1f} s, then {point['round_s']:6.2f} s "
                  f"per round ({point['round_cpu_s']:6.2f} s CPU; incl. a sync pass every 5), "
                  f"{point['records']:.0f} records per node at the end, peak RSS "
                  f"{point['rss_mb']:.0f} MB", flush=True)


async def _propagation(runtime: Runtime, nodes: int, trials: int, deadline_s: float
                       ) -> tuple[list[float], list[float], int, int, int]:
    from node.net.libp2p import open_libp2p_network

    problem = load_package(CHEAP)
    rng = random.Random(7)
    async with AsyncExitStack() as stack:
        tmp = stack.enter_context(__import__("tempfile").TemporaryDirectory())
        swarm: list[SwarmNode] = []
        for index in range(nodes):
            identity = Identity.from_seed(hashlib.sha256(b"prop%d" % index).digest())
            bootstrap = [swarm[j].network.listen_addrs()[0]
                         for j in rng.sample(range(index), min(index, 3))]
            network = await stack.enter_async_context(
                open_libp2p_network(identity.private_key, bootstrap=bootstrap))
            store = stack.enter_context(RecordStore.open(Path(tmp) / f"{index}.sqlite",
                                                         durable=False))
            node = SwarmNode(identity, network, store, lambda p: (lambda files: None),  # type: ignore[arg-type,return-value]
                             OfflineMutator(), NodeConfig(problems=()))
            nursery = await stack.enter_async_context(trio.open_nursery())
            stack.callback(nursery.cancel_scope.cancel)  # serve runs until cancelled
            await nursery.start(node.serve)
            swarm.append(node)
        posed = await swarm[0].pose(problem)
        for node in swarm:
            await node._subscribe(f"/swarm/1/problem/{posed.id}")
        await trio.sleep(3.0)  # a few 1 s heartbeats for meshes to form (a bench, not a test)
        spreads: list[float] = []
        arrivals: list[float] = []  # per node and record: when it was first seen in the DAG
        gossip_delivered = synced = total = 0
        for trial in range(trials):
            source = swarm[rng.randrange(nodes)]
            record = sign_record(
                Experiment(problem=posed.id, strategy={"strategy.py": f"# trial {trial}\n"},
                           outcome=Outcome(status="crash"), created_ms=trial),
                source.identity)
            started = trio.current_time()
            source._share(record)
            await source.flush()
            missing = set(range(nodes)) - {swarm.index(source)}
            seen = 0.0
            with trio.move_on_after(deadline_s):
                while missing:
                    seen = trio.current_time() - started
                    arrived = {i for i in missing if record.id in swarm[i].dag}
                    arrivals += [seen] * len(arrived)
                    missing -= arrived
                    if missing:
                        await trio.sleep(0.002)
            elapsed = seen
            total += nodes - 1
            gossip_delivered += nodes - 1 - len(missing)
            if not missing:
                spreads.append(elapsed)
            for i in missing:
                await swarm[i].sync_with_peers()
            synced += sum(1 for i in range(nodes) if record.id in swarm[i].dag) - 1
            await trio.sleep(0.2)
        return spreads, arrivals, gossip_delivered, synced, total


def bench_propagation(runtime: Runtime, nodes: int, trials: int) -> None:
    spreads, arrivals, gossip, synced, total = trio.run(
        _propagation, runtime, nodes, trials, 1.0)

    def quantile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    p50 = statistics.median(spreads) if spreads else float("nan")
    print(f"propagation  libp2p, {nodes} nodes, {trials} records: time to reach every node "
          f"p50 {p50 * 1000:.0f} ms, p99 {quantile(spreads, 0.99) * 1000:.0f} ms (goal p99 <= "
          f"1000 ms); to reach one node p50 {quantile(arrivals, 0.5) * 1000:.0f} ms, p90 "
          f"{quantile(arrivals, 0.9) * 1000:.0f} ms; gossip alone delivered "
          f"{100 * gossip / total:.1f} %, with one sync pass {100 * synced / total:.1f} % "
          f"(goal 100 %)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and sizes")
    parser.add_argument("--only", default="rounds,liars,scale,propagation")
    parser.add_argument("--seeds", type=int, default=9, help="seeds per size for rounds")
    parser.add_argument("--cap-one", type=int, default=2000,
                        help="most rounds a 1-node run may take to reach the target")
    parser.add_argument("--compose", type=float, default=None,
                        help="share of a round's nodes that add the round's other improving "
                             "moves to the best (node/mutators/compose.py SHARE; default 0)")
    parser.add_argument("--sizes", default="1,4,16", help="swarm sizes for rounds")
    parser.add_argument("--cap-many", type=int, default=400,
                        help="most rounds a run of several nodes may take to reach the target")
    parser.add_argument("--first-seed", type=int, default=0, help="rounds: the seeds from here")
    parser.add_argument("--peer-data", choices=("vouched", "all", "none"), default="vouched",
                        help="a measurement: which peers' experiments are the search model's "
                             "data (vouched: the node's rule; all: every peer's at once; "
                             "none: only the node's own)")
    args = parser.parse_args()
    if args.peer_data != "vouched":
        from node.swarm import SwarmNode

        everyone = args.peer_data == "all"
        setattr(SwarmNode, "_informs", lambda self, experiment: everyone)  # noqa: B010
    if args.compose is not None:
        from node.mutators import compose

        compose.SHARE = args.compose
    runtime = load_runtime(progress=lambda message: print(message, file=sys.stderr))
    only = set(args.only.split(","))
    seeds, cap = (2, 60) if args.quick else (5, 120)
    if "rounds" in only:
        if args.quick:  # bounded: a plateaued 1-node run costs ~0.25 s a round up to its cap
            bench_rounds(runtime, 3, {1: min(args.cap_one, 400), 4: 200, 16: 200})
        else:
            sizes = [int(size) for size in args.sizes.split(",")]
            bench_rounds(runtime, args.seeds, {size: args.cap_one if size == 1 else args.cap_many
                                               for size in sizes}, args.first_seed)
    if "diversity" in only:
        bench_diversity(runtime, 2 if args.quick else args.seeds, 16, cap=60 if args.quick else 120)
    if "liars" in only:
        bench_liars(runtime, seeds, cap)
    if "scale" in only:
        bench_scale([100, 300] if args.quick else [100, 300, 500],
                    [10, 25] if args.quick else [10, 25, 50], rounds=5)
    if "propagation" in only:
        bench_propagation(runtime, 25, 10 if args.quick else 30)


if __name__ == "__main__":
    main()
