"""How promptly a busy node answers libp2p pings (issue 10, item 4).

    .venv/bin/python bench/bench_ping.py [--records 20000] [--seconds 40] [--problem DIR]

js-libp2p's connection monitor opens a `/ipfs/ping/1.0.0` stream to every peer every 10 s and
aborts the connection when the echo takes longer than 5 s (its adaptive timeout's minimum).
Three processes on 127.0.0.1:

- a *server* node holding `--records` signed experiments of one problem (it posed it);
- the *busy* node measured (this process): it joins, syncs those records from the server
  (intake: decoding, signature checks, the store, the DAG) and researches the problem
  (sandbox evaluations in worker threads), as `swarm join` does;
- a *pinger*, which pings the busy node (or, with `--ping server`, the server) every 0.2 s,
  each ping on a new stream like js-libp2p, and reports the round-trip times (stream
  negotiation included).

The busy node also measures how late its own event loop wakes from a 10 ms sleep: a task that
holds the loop delays every ping by as long.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.identity import Identity, sign_record
from node.mutators import OfflineMutator
from node.net import open_libp2p_network
from node.problem import baseline_files, load_package
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Experiment, Outcome, Problem, Record
from sandbox import Evaluator, load_runtime

ROOT = Path(__file__).resolve().parent.parent
PING_EVERY_S = 0.2
JS_PING_TIMEOUT_S = 5.0  # js-libp2p aborts the connection past this


class _SlowSteps(trio.abc.Instrument):
    """The longest task steps (time a task held the event loop without yielding), by task."""

    def __init__(self) -> None:
        self.started = 0.0
        self.worst: dict[str, float] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.started = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        took = time.perf_counter() - self.started
        if took > self.worst.get(task.name, 0.0):
            self.worst[task.name] = took


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _records(problem: Problem, identity: Identity, count: int) -> list[Record]:
    posed = sign_record(problem, identity)
    assert isinstance(posed, Problem)
    files = baseline_files(posed)
    rng = random.Random(0)
    records: list[Record] = [posed]
    for n in range(count):
        strategy = {path: text + f"\n# attempt {n}\n" for path, text in files.items()}
        outcome = Outcome(status="ok", score=rng.uniform(-1e6, -1e5),
                          strategy_fuel=rng.randrange(10**6, 10**8), evaluator_fuel=10**6)
        records.append(sign_record(Experiment(
            problem=posed.id, strategy=strategy, mutation_kind="perturb",
            description=f"synthetic attempt {n}", outcome=outcome, created_ms=n + 1,
        ), identity))
    return records


async def _serve(args: argparse.Namespace) -> None:
    """The server: its records in a store, served by sync until stdin closes."""
    identity = Identity.from_seed(b"\x51" * 32)
    with tempfile.TemporaryDirectory() as tmp:
        store = RecordStore.open(Path(tmp) / "server.sqlite", durable=False)
        with store:
            store.add_many(_records(load_package(Path(args.problem)), identity, args.records))
            async with open_libp2p_network(identity.private_key) as network:
                SwarmNode(identity, network, store, lambda p: None,  # type: ignore[arg-type,return-value]
                          OfflineMutator(), NodeConfig(problems=()))
                print(network.listen_addrs()[0], flush=True)
                await trio.to_thread.run_sync(sys.stdin.read)  # until the bench closes it


async def _ping(args: argparse.Namespace) -> None:
    """The pinger: pings `args.target` every PING_EVERY_S for `args.seconds`; prints JSON."""
    identity = Identity.from_seed(b"\x52" * 32)
    rtts: list[float] = []
    failures = 0
    async with open_libp2p_network(identity.private_key, bootstrap=[args.target]) as network:
        peer = args.target.rsplit("/", 1)[-1]
        deadline = trio.current_time() + args.seconds
        while trio.current_time() < deadline:
            started = trio.current_time()
            with trio.move_on_after(JS_PING_TIMEOUT_S * 2) as scope:
                try:
                    rtts.append(await network.ping(peer))
                except Exception:  # noqa: BLE001  # a bench counts any failure
                    failures += 1
            if scope.cancelled_caught:
                failures += 1
            await trio.sleep_until(started + PING_EVERY_S)
    print(json.dumps({"rtts": rtts, "failures": failures}), flush=True)


async def _busy(args: argparse.Namespace) -> dict[str, Any]:
    runtime = load_runtime()
    identity = Identity.from_seed(b"\x53" * 32)
    command = [sys.executable, __file__, "--records", str(args.records), "--problem",
               args.problem]
    server = subprocess.Popen([*command, "--role", "server"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    server_addr = server.stdout.readline().strip()
    lateness: list[float] = []
    result: dict[str, Any] = {}
    steps = _SlowSteps()
    trio.lowlevel.add_instrument(steps)
    with tempfile.TemporaryDirectory() as tmp:
        store = RecordStore.open(Path(tmp) / "busy.sqlite", durable=False)
        evaluators: list[Evaluator] = []

        def evaluator_for(problem: Problem) -> Any:
            evaluator = Evaluator(runtime, problem, workdir=Path(tmp))
            evaluators.append(evaluator)
            return evaluator.evaluate

        with store:
            async with open_libp2p_network(identity.private_key) as network:
                node = SwarmNode(identity, network, store, evaluator_for, OfflineMutator(),
                                 NodeConfig())

                async def probe_loop() -> None:
                    while True:
                        before = trio.current_time()
                        await trio.sleep(0.01)
                        lateness.append(trio.current_time() - before - 0.01)

                async def research() -> None:
                    while True:
                        if await node.research_round() is None:
                            await trio.sleep(0.1)

                async with trio.open_nursery() as nursery:
                    await nursery.start(node.serve)
                    nursery.start_soon(probe_loop)
                    target = server_addr if args.ping == "server" else network.listen_addrs()[0]
                    pinger = await trio.lowlevel.open_process(
                        [*command, "--role", "pinger", "--target", target,
                         "--seconds", str(args.seconds)], stdout=subprocess.PIPE)
                    started = time.perf_counter()
                    await network.connect(server_addr)  # sync on connect: the intake load
                    nursery.start_soon(research)
                    assert pinger.stdout is not None
                    output = b""
                    async for chunk in pinger.stdout:
                        output += chunk
                    await pinger.wait()
                    result = json.loads(output)
                    result["seconds"] = time.perf_counter() - started
                    result["received"] = node.stats.received
                    result["evaluations"] = node.stats.evaluations
                    nursery.cancel_scope.cancel()
        for evaluator in evaluators:
            evaluator.close()
    server.stdin.close()
    server.wait(timeout=30)
    result["lateness"] = lateness
    result["steps"] = sorted(steps.worst.items(), key=lambda item: -item[1])[:5]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["busy", "server", "pinger"], default="busy")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--problem", default=str(ROOT / "examples" / "search_ranking"))
    parser.add_argument("--target", default="")
    parser.add_argument("--profile", action="store_true", help="Profile the busy node's loop.")
    parser.add_argument("--ping", choices=["busy", "server"], default="busy",
                        help="Ping the busy node (default) or the server it syncs from.")
    args = parser.parse_args()
    if args.role == "server":
        trio.run(_serve, args)
        return
    if args.role == "pinger":
        trio.run(_ping, args)
        return
    if args.profile:  # where the event loop's own time goes (worker threads not included)
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(trio.run, _busy, args)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    else:
        result = trio.run(_busy, args)
    rtts, late = result["rtts"], result["lateness"]
    slow = sum(1 for rtt in rtts if rtt > JS_PING_TIMEOUT_S) + result["failures"]
    print(f"busy node: {result['received']} records taken in by sync, {result['evaluations']} "
          f"evaluations in {result['seconds']:.0f} s")
    print(f"ping rtt   {len(rtts)} pings: p50 {_quantile(rtts, 0.5) * 1000:.0f} ms, "
          f"p90 {_quantile(rtts, 0.9) * 1000:.0f} ms, p99 {_quantile(rtts, 0.99) * 1000:.0f} ms, "
          f"max {max(rtts, default=0) * 1000:.0f} ms; over 1 s: "
          f"{sum(1 for rtt in rtts if rtt > 1)}; failed or over {JS_PING_TIMEOUT_S:.0f} s "
          f"(js-libp2p would disconnect): {slow}")
    print(f"event loop wake-up lateness: p50 {_quantile(late, 0.5) * 1000:.1f} ms, "
          f"p99 {_quantile(late, 0.99) * 1000:.0f} ms, max {max(late, default=0) * 1000:.0f} ms")
    print("longest task steps (the loop held without a checkpoint): " + ", ".join(
        f"{name.rsplit('.', 1)[-1]} {took * 1000:.0f} ms" for name, took in result["steps"]))


if __name__ == "__main__":
    main()
