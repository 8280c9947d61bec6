"""The swarm half of the `swarm` command: join, status, leaderboard and simulate.

Part of the CLI layer, node/cli/: the only modules that print for humans.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from node.cli.models import EvalModel, evaluation_for, open_gateway, usage_text
from node.cli.options import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Bootstrap,
    DashboardFlag,
    DashboardPort,
    DataDir,
    JsonFlag,
    NoStop,
    _data_dir,
    _fail,
    _find_problem,
    _fmt,
    _identity,
    _load_problem,
    _mutator,
    _open_store,
    _print_json,
    _runtime,
    err,
    out,
)
from node.untrusted_text import inline, markup

if TYPE_CHECKING:
    from node.llm import ModelGateway
    from node.sim import Simulation
    from node.swarm import SwarmNode
    from node.web import DashboardSource
    from research_dag import Problem, ResearchDag

SYNC_EVERY_S = 30.0
STATUS_EVERY = 10  # rounds between live status lines (and node-status.json writes)
NODE_STATUS_FILE = "node-status.json"  # a running node's counters, for `swarm status`
VIEW_CACHE = 1024  # whole records status and leaderboard keep in memory; the store has the rest
ProblemArg = Annotated[str | None, typer.Argument(
    metavar="[PROBLEM]", help="A problem name, id prefix or package directory.")]


@contextmanager
def _open_dag(data_dir: Path | None) -> Iterator[ResearchDag]:
    """The data directory's DAG for a view: headers in memory, whole records read when shown;
    one error line if the store is damaged (also when a record read later is)."""
    from node.store import StoreError

    with _open_store(data_dir) as store:
        try:
            yield store.load_dag(cache=VIEW_CACHE)
        except StoreError as error:
            _fail(str(error))


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
) -> None:
    """Run a swarm node until Ctrl-C: research, share, verify peers' claims."""
    import trio

    from node.net import NetworkError, open_libp2p_network
    from node.store import StoreError
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
        with _open_store(data_dir) as store:
            async with open_libp2p_network(
                identity.private_key, listen=listen, bootstrap=bootstrap or (), mdns=mdns
            ) as network:
                node = SwarmNode(identity, network, store, evaluator_for, chosen,
                                 NodeConfig(problems=wanted))
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


def _read_node_status(path: Path) -> dict[str, Any] | None:
    """The counters a node last wrote, or None (never joined, or the file is not ours)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("drops"), dict):
        return None
    return data


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


def status(problem: ProblemArg = None, data_dir: DataDir = None,
           as_json: JsonFlag = False) -> None:
    """What this node's data directory holds: identity, records, problems (or one), their
    verified bests, each peer's standing, and what the node last counted (drops by reason)."""
    directory = _data_dir(data_dir)
    identity = _identity(data_dir)
    with _open_dag(data_dir) as dag:
        counts, problems, peers = _status_of(dag, identity.peer_id, problem, directory)
    node = _read_node_status(directory / NODE_STATUS_FILE)
    report = {"peer_id": identity.peer_id, "data_dir": str(directory), "records": counts,
              "problems": problems, "standing": peers, "node": node}
    if as_json:
        _print_json(report)
        return
    out.print(f"peer id  {identity.peer_id}\ndata dir {markup(str(directory))}", highlight=False)
    out.print("records  " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"),
              highlight=False)
    if node is not None:
        drops = ", ".join(f"{inline(str(k))} {inline(str(n))}" for k, n in node["drops"].items())
        written = time.strftime("%Y-%m-%d %H:%M:%S",
                                time.localtime(float(node.get("written_ms", 0)) / 1000))
        out.print(f"drops    {drops} (counted by the node since it started; as of {written})",
                  highlight=False, soft_wrap=True)
    for item in problems:
        disputed = f", [red]{item['disputed']} disputed[/]" if item["disputed"] else ""
        out.print(f"  {inline(item['name']):<20} {item['id'][:12]}  "
                  f"{item['experiments']} experiments "
                  f"({item['mine']} mine), verified best {_fmt(item['best'])}{disputed}",
                  highlight=False)
    for peer, row in peers.items():
        out.print(f"  peer {inline(peer[:16]):<16} standing {row['standing']:+.2f}: "
                  f"{row['verified']} verified, {row['pending']} pending, "
                  f"{row['disputed']} disputed" + (" [red](ignored)[/]" if row["ignored"] else ""),
                  highlight=False)


def _status_of(dag: ResearchDag, me: str, problem: str | None, directory: Path
               ) -> tuple[dict[str, int], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Records by kind, the problems shown, and each peer's standing, from the DAG's headers
    (a claim is loaded only to judge votes on it, a best only if it is one)."""
    from node.leaderboard import headers_by_kind, ledger_from, standings, verified_best

    kinds = headers_by_kind(dag)
    counts = {kind: len(headers) for kind, headers in kinds.items()}
    ledger = ledger_from(dag, me, kinds.get("verification", []))
    shown = list(dag.problems())
    if problem is not None:
        found = _find_problem(problem, shown, directory)
        if found is None:
            _fail(f"no problem of package {problem!r} in {directory}", EXIT_USAGE)
        shown = [found]
    problems: list[dict[str, Any]] = []
    for entry in shown:
        experiments = dag.experiment_headers(entry.id)
        best = verified_best(dag, ledger, entry.id)
        problems.append({
            "id": entry.id, "name": entry.name, "experiments": len(experiments),
            "mine": sum(1 for e in experiments if e.author == me),
            "best": None if best is None else best.outcome.score,
            "best_experiment": None if best is None else best.id,
            "disputed": sum(1 for e in experiments
                            if ledger.verdict_of(e, dag.get)[0] == "disputed"),
        })
    return counts, problems, standings(dag, ledger, kinds.get("experiment", []))


def leaderboard(
    problem: ProblemArg = None,
    data_dir: DataDir = None,
    top: Annotated[int, typer.Option(min=1, help="Entries per problem.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """Best strategies per problem, with how many peers reproduced each and disputed claims."""
    from rich.table import Table

    from node.leaderboard import leaderboard_rows

    identity = _identity(data_dir)
    with _open_dag(data_dir) as dag:
        wanted = None
        if problem is not None:
            found = _find_problem(problem, list(dag.problems()), _data_dir(data_dir))
            if found is None:
                _fail(f"no problem of package {problem!r} in {_data_dir(data_dir)}", EXIT_USAGE)
            wanted = found.id
        boards = leaderboard_rows(dag, identity.peer_id, wanted, top)
    if as_json:
        _print_json(boards)
        return
    for board in boards:
        table = Table(title=f"{inline(board['name'])} ({board['direction']}) {board['id'][:12]}")
        for column in ("experiment", "score", "verdict", "replays", "author", "kind"):
            table.add_column(column)
        for row in board["rows"]:
            style = {"verified": "green", "disputed": "red"}.get(row["verdict"], "")
            table.add_row(row["id"][:10], _fmt(row["score"]), row["verdict"],
                          str(row["matches"]), inline(row["author"][:12]),
                          inline(row["mutation_kind"]),
                          style=style)
        out.print(table)
        out.print(f"verified best {_fmt(board['best'])}", highlight=False)
        if board["disputed"]:
            out.print(f"[red]{board['disputed']} disputed claim(s)[/] on this problem")


def simulate(
    nodes: Annotated[int, typer.Option(min=1, max=100_000, help="How many nodes.")] = 4,
    network: Annotated[str, typer.Option(help="memory (default; scales) or libp2p (real "
                                         "hosts on 127.0.0.1, up to ~25).")] = "memory",
    problem: Annotated[
        list[Path] | None, typer.Option("--problem", help="A package directory (repeatable).")
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Evaluation rounds at most.")] = 50,
    faults: Annotated[str, typer.Option(
        help="e.g. liars=0.3,churn=0.2,partition=10,spam=0.1 (partition in rounds).")] = "",
    seed: Annotated[int, typer.Option(help="Seed of the whole simulation (the same seed gives "
                                      "the same trace).")] = 0,
    no_stop: NoStop = False,
    report: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    as_json: JsonFlag = False,
    dashboard: DashboardFlag = False,
    dashboard_port: DashboardPort = 8321,
    eval_model: EvalModel = "standin",
) -> None:
    """Run N nodes in this process on a bundled or given problem; report how the swarm did."""
    import trio

    from node.sim import FaultError, Faults, SimConfig, Simulation
    from node.web import DashboardError

    if network not in ("memory", "libp2p"):
        _fail(f"unknown network {network!r}: use memory or libp2p", EXIT_USAGE)
    try:
        parsed = Faults.parse(faults)
    except FaultError as error:
        _fail(str(error), EXIT_USAGE)
    directories = problem or [Path("examples/landing_copy")]
    problems = tuple(_load_problem(directory) for directory in directories)
    if report is not None and not report.parent.is_dir():  # known now, not after the run
        _fail(f"cannot write the report to {report}: no directory {report.parent}", EXIT_USAGE)
    runtime = _runtime(quiet=as_json)
    config = SimConfig(nodes=nodes, problems=problems, rounds=rounds,
                       network="libp2p" if network == "libp2p" else "memory",
                       faults=parsed, seed=seed, stop_at_target=not no_stop)

    shown: dict[str, Any] = {}  # the simulation report the dashboard shows, as of the last round
    page: list[str] = []

    def on_round(index: int, sim: Simulation) -> None:
        if dashboard:
            shown["report"] = sim.report()
        if as_json:
            return
        last = sim.history[-1]
        reached = sum(1 for s in sim.plan if s.reached is not None and not s.liar)
        honest = sum(1 for s in sim.plan if not s.liar)
        err.print(f"round {index:>4}: swarm best {_fmt(last['swarm_best'])}, "
                  f"{reached}/{honest} honest nodes at target, {last['messages']} messages, "
                  f"{last['verifications']} replays, {last['disputes']} disputes "
                  f"({last['seconds']:.2f} s)", highlight=False)

    async def finish(sim: Simulation) -> None:
        from node.web import export_report

        shown["report"] = sim.report()
        if report is not None:
            page.append(await trio.to_thread.run_sync(
                export_report, _simulation_source(sim, shown), None, "#/simulation"))
        if dashboard and not as_json:
            err.print("[dim]simulation done; the dashboard stays up until Ctrl-C[/]")
            await _wait_for_interrupt()

    # A problem that asks a model: every node evaluates it, and verifies its peers' claims
    # (replay with the transcript, then a spot check), through one gateway (node/sim may not
    # import node.llm); a plain replay would dispute every honest claim.
    gateway = None
    if any(p.model is not None for p in problems):
        from node.llm import ModelGateway

        # No cache of its own: which node's evaluation asked a request first would depend on
        # worker-thread timing, and so would each transcript's `cached` flags (and ids). The
        # simulation memoises whole evaluations instead.
        gateway = ModelGateway(open_gateway(eval_model, None, None, None, None).provider,
                               cache_entries=0)
    simulation = Simulation(config, runtime, on_round=on_round, finish=finish, gateway=gateway)

    async def main() -> dict[str, Any]:
        if not dashboard:
            return await simulation.run()
        from node.cli.dashboard import run_with_dashboard

        return await run_with_dashboard(_simulation_source(simulation, shown), dashboard_port,
                                        simulation.run)

    failure = ""
    try:
        result = trio.run(main)
    except* KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except* DashboardError as group:
        failure = str(group.exceptions[0])
    if failure:
        _fail(failure)
    if report is not None:
        from node.cli.dashboard import write_report

        write_report(report, page[0])
    if as_json:
        _print_json(result)
        return
    swarm = result["swarm"]
    out.print(
        f"{inline(problems[0].name)}: {nodes} nodes ({network}), {result['rounds_run']} rounds; "
        f"baseline {_fmt(swarm['baseline'])} → swarm best {_fmt(swarm['best'])}; "
        f"first at target in round "
        f"{swarm['first_reached_target_round']}, all honest by round "
        f"{swarm['all_honest_reached_round']}; {swarm['messages']} messages, "
        f"{swarm['verifications']} replays, {swarm['disputes']} disputes, "
        f"{swarm['accepted_fake_claims']} of {swarm['fake_claims']} fake claims accepted",
        highlight=False,
    )
    if gateway is not None:
        out.print(f"evaluations' {usage_text(gateway.usage)}", highlight=False)
    if report is not None:
        out.print(f"report: {markup(str(report))}", highlight=False)


def _simulation_source(simulation: Simulation, shown: dict[str, Any]) -> DashboardSource:
    """What the dashboard of a simulation reads: node 0's store (it poses the problems and
    never churns) and the simulation's report as of the last round."""
    from node.web import DashboardSource

    first = simulation.plan[0]

    def store() -> Any:
        return None if first.node is None else first.node.store

    return DashboardSource(store=store, me=first.identity.peer_id,
                           simulation=lambda: shown.get("report"))


async def _wait_for_interrupt() -> None:
    """Until Ctrl-C (taken here, so the run still ends with its summary)."""
    import signal

    import trio

    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            return
