"""The `swarm join` command: run a swarm node until Ctrl-C, printing its kept changes and a
status line now and then, and writing its counters for `swarm status`.

Part of the CLI layer, node/cli/: the only modules that print for humans.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from node.cli.models import EvalModel, evaluation_for, open_gateway
from node.cli.options import (
    EXIT_INTERRUPTED,
    Bootstrap,
    DashboardFlag,
    DashboardPort,
    DataDir,
    _data_dir,
    _fail,
    _fmt,
    _identity,
    _mutator,
    _open_store,
    _runtime,
    err,
    out,
)
from node.cli.status import NODE_STATUS_FILE
from node.untrusted_text import inline, markup

if TYPE_CHECKING:
    from node.llm import ModelGateway
    from node.swarm import SwarmNode
    from research_dag import Problem

SYNC_EVERY_S = 30.0
STATUS_EVERY = 10  # rounds between live status lines (and node-status.json writes)


def join(
    listen: Annotated[str, typer.Option(help="Multiaddr to listen on.")] = "/ip4/0.0.0.0/tcp/4001",
    bootstrap: Bootstrap = None,
    data_dir: DataDir = None,
    mutator: Annotated[str, typer.Option(help="offline, anthropic or openai.")] = "offline",
    problems: Annotated[
        list[str] | None, typer.Option("--problems", help="'all' (default) or problem ids.")
    ] = None,
    mdns: Annotated[bool, typer.Option(
        "--mdns/--no-mdns", help="Find peers on the LAN by mDNS (on the --listen interface).")
    ] = True,
    dashboard: DashboardFlag = False,
    dashboard_port: DashboardPort = 8321,
    eval_model: EvalModel = "standin",
    reserve_mib: Annotated[int, typer.Option(
        "--reserve-mib", min=0, help="Free disk space (MiB) kept for this node's own records:"
        " below it, peers' records are not stored; up to 64 MiB of it is also held in a"
        " ballast file for when a quota fills the disk (docs/storage.md, 'A full disk').")
    ] = 1024,
) -> None:
    """Run a swarm node until Ctrl-C: research, share, verify peers' claims."""
    import trio

    from node.net import NetworkError, open_libp2p_network
    from node.store import StoreError
    from node.store_ballast import BALLAST_BYTES
    from node.swarm import NodeConfig, SwarmNode
    from node.web import DashboardError, DashboardSource
    from sandbox import Evaluator

    identity = _identity(data_dir)
    runtime = _runtime(quiet=False)
    chosen, close = _mutator(mutator, None, None, None, None)
    wanted: Literal["all"] | tuple[str, ...] = (
        "all" if not problems or problems == ["all"] else tuple(problems)
    )
    evaluators: list[Evaluator] = []

    gateways: list[ModelGateway] = []  # one for every problem that asks a model

    def evaluator_for(problem: Problem) -> Any:
        evaluator = Evaluator(runtime, problem)
        evaluators.append(evaluator)
        if problem.model is not None and not gateways:
            gateways.append(open_gateway(eval_model, None, None, None, None))
        # A model-backed problem's claims are verified with their transcripts (replay, then a
        # spot check with our model): a plain replay would dispute every honest one.
        return evaluation_for(problem, evaluator, gateways[0] if gateways else None)

    status_path = _data_dir(data_dir) / NODE_STATUS_FILE

    async def main() -> None:
        # The ballast: room for the node's own records when a limit statfs does not show (a
        # quota) fills the disk; no larger than the reserve (`--reserve-mib 0`: neither).
        with _open_store(data_dir, min(BALLAST_BYTES, reserve_mib << 20)) as store:
            async with open_libp2p_network(
                identity.private_key, listen=listen, bootstrap=bootstrap or (), mdns=mdns
            ) as network:
                node = SwarmNode(identity, network, store, evaluator_for, chosen,
                                 NodeConfig(problems=wanted, min_free_bytes=reserve_mib << 20))
                for addr in network.listen_addrs():
                    out.print(f"listening on [bold]{addr}[/]", highlight=False, soft_wrap=True)
                try:
                    async with trio.open_nursery() as nursery:
                        await nursery.start(node.serve)
                        if dashboard:
                            from node.cli.dashboard import start_dashboard

                            await start_dashboard(nursery, DashboardSource(
                                store=lambda: store, me=identity.peer_id), dashboard_port)
                        nursery.start_soon(_sync_periodically, node)
                        await _research_forever(node, status_path)
                finally:  # Ctrl-C too: the counters of the whole run
                    _write_node_status(status_path, node)

    interrupted, failure = False, ""
    try:
        trio.run(main)
    except* KeyboardInterrupt:  # trio's nurseries deliver it inside exception groups
        interrupted = True
    except* (NetworkError, StoreError, DashboardError) as group:  # damaged, locked, disk full
        failure = str(group.exceptions[0])
    finally:
        for evaluator in evaluators:
            evaluator.close()
        if close is not None:
            trio.run(close)
    if failure:
        _fail(failure)
    if interrupted:
        err.print("[yellow]stopped[/]: every finished record is on disk; rejoin to resume.")
        raise typer.Exit(EXIT_INTERRUPTED)


def _status_line(node: SwarmNode) -> str:
    """One line of live progress: peers, each joined problem's best, trust activity."""
    bests = []
    for _, loop in sorted(node.loops.items()):
        best = loop.best
        score = None if best is None else best.outcome.score
        bests.append(f"{inline(loop.problem.name)} best {_fmt(score)}")
    stats = node.stats
    return (f"{len(node.network.connected_peers())} peers | " + (", ".join(bests) or "no problem")
            + f" | {stats.evaluations} evaluations, {stats.replays} replays "
            f"({stats.disputes} disputed), {stats.received} records received")


async def _sync_periodically(node: SwarmNode) -> None:
    import trio

    while True:
        await trio.sleep(SYNC_EVERY_S)
        await node.sync_with_peers()


def node_counters(node: SwarmNode) -> dict[str, Any]:
    """What a running node counted since it started: drops by reason, trust and intake."""
    stats = node.stats
    return {
        "written_ms": int(time.time() * 1000), "peer_id": node.me,
        "peers": len(node.network.connected_peers()), "drops": stats.drops.by_reason(),
        "evaluations": stats.evaluations, "replays": stats.replays,
        "replay_matches": stats.replay_matches, "disputes": stats.disputes,
        "sampled": stats.sampled, "expired": stats.expired, "adopted": stats.adopted,
        "received": stats.received, "ignored": stats.ignored, "refused": stats.refused,
        "published": stats.published, "sync_failures": node.sync.failures,
        # False while the disk is at the node's reserve: peers' records are not stored
        "room": node.room,
        # times the disk filled and the ballast was given to the node's own records, and
        # whether it is held now (None: no ballast)
        # strangers' problems held (count, memory) and whether a new one was last declined
        "catalogue": {"held": node.catalogue.count, "bytes": node.catalogue.bytes,
                      "full": node.catalogue.full},
        "ballast": None if node.store.ballast is None else {
            "held": node.store.ballast.held, "released": node.store.ballast.released,
            "disabled": node.store.ballast.disabled},
        # requests peers made of our records: served, paced, refused (node/net/serve_budget.py)
        "sync_serving": node.sync.budget.by_reason(),
        # spot checks of model-backed claims that could not run, claims given up, and why
        "spot_unchecked": stats.spot_unchecked, "spot_given_up": stats.spot_given_up,
        "spot_last_failure": stats.spot_last_failure,
    }


def _write_node_status(path: Path, node: SwarmNode) -> None:
    """Replaced whole (write, then rename), so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(node_counters(node)))  # drops in protocol order
        os.replace(partial, path)
    except OSError as error:  # a full disk must not stop the node: the counters are a view
        err.print(f"[yellow]cannot write {markup(str(path))}[/]: {error.strerror or error}",
                  highlight=False)


async def _research_forever(node: SwarmNode, status_path: Path) -> None:
    import trio

    idle_reported = False
    rounds = 0
    while True:
        step = await node.research_round()
        rounds += 1
        if rounds % STATUS_EVERY == 0:
            err.print(f"[dim]{_status_line(node)}[/]", highlight=False)
            await trio.to_thread.run_sync(_write_node_status, status_path, node)
        if step is None:
            if not idle_reported:
                err.print("[dim]no problem to work on yet: waiting for one to be posed[/]")
                idle_reported = True
            await trio.sleep(1.0)
            continue
        idle_reported = False
        if step.status == "keep":
            out.print(
                f"[green]keep[/] {step.experiment_id[:10]} {_fmt(step.score):>10}  "
                f"{inline(step.mutation_kind)}: {inline(step.description)}",
                highlight=False,
            )


