"""The `swarm simulate` command: N nodes in this process on a bundled or given problem, the
rounds as they go, and a summary (or JSON, or an HTML report) of how the swarm did.

Part of the CLI layer, node/cli/: the only modules that print for humans.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from node.cli.models import EvalModel, budget_spent, open_gateway, usage_text
from node.cli.options import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    BaseUrl,
    DashboardFlag,
    DashboardPort,
    JsonFlag,
    MaxCost,
    MaxTokens,
    Model,
    NoStop,
    _fail,
    _fmt,
    _load_problem,
    _print_json,
    _runtime,
    err,
    out,
)
from node.untrusted_text import inline, markup

if TYPE_CHECKING:
    from node.sim import Simulation
    from node.web import DashboardSource


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
    keep: Annotated[Path | None, typer.Option(
        "--data-dir", help="Keep node 0's records and identity in this new directory, to browse "
        "after the run (swarm dag, playbook, log --data-dir DIR). Default: none kept.")] = None,
    as_json: JsonFlag = False,
    dashboard: DashboardFlag = False,
    dashboard_port: DashboardPort = 8321,
    eval_model: EvalModel = "standin",
    model: Model = None,
    base_url: BaseUrl = None,
    max_tokens: MaxTokens = None,
    max_cost: MaxCost = None,
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
    directories = problem or [_default_problem()]
    problems = tuple(_load_problem(directory) for directory in directories)
    if report is not None and not report.parent.is_dir():  # known now, not after the run
        _fail(f"cannot write the report to {report}: no directory {report.parent}", EXIT_USAGE)
    if keep is not None:
        _check_new_directory(keep)
    runtime = _runtime(quiet=as_json)
    config = SimConfig(nodes=nodes, problems=problems, rounds=rounds,
                       network="libp2p" if network == "libp2p" else "memory",
                       faults=parsed, seed=seed, stop_at_target=not no_stop, data_dir=keep)

    shown: dict[str, Any] = {}  # the simulation report the dashboard shows, as of the last round
    page: list[str] = []

    def on_round(index: int, sim: Simulation) -> None:
        spent = budget_spent(gateway)  # one budget for every node's model calls, as in `run`
        if spent is not None:
            sim.stop("model_budget")
        if dashboard:
            shown["report"] = sim.report()
        if not as_json:
            last = sim.history[-1]
            reached = sum(1 for s in sim.plan if s.reached is not None and not s.liar)
            honest = sum(1 for s in sim.plan if not s.liar)
            err.print(f"round {index:>4}: swarm best {_fmt(last['swarm_best'])}, "
                      f"{reached}/{honest} honest nodes at target, {last['messages']} "
                      f"messages, {last['verifications']} replays, {last['disputes']} "
                      f"disputes ({last['seconds']:.2f} s)", highlight=False)
        if spent is not None:  # on stderr with --json too
            flag = "--max-tokens" if spent.startswith("token") else "--max-cost"
            err.print(f"[yellow]stopped[/]: {markup(spent)} ({flag}); the simulation ends "
                      f"with round {index}", highlight=False)

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
        # No cache of its own: which node's evaluation asked a request first would depend on
        # worker-thread timing, and so would each transcript's `cached` flags (and ids). The
        # simulation memoises whole evaluations instead.
        gateway = open_gateway(eval_model, model, base_url, max_tokens, max_cost,
                               cache_entries=0)
    elif max_tokens is not None or max_cost is not None:
        err.print("[yellow]note[/]: --max-tokens / --max-cost have nothing to cap: no problem "
                  "here asks a model (the simulated nodes' mutator is the offline one)",
                  highlight=False)
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
    if gateway is not None:
        usage = gateway.usage
        result["model_usage"] = {
            "calls": usage.calls, "cached": usage.cached, "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens, "cost_usd": usage.cost_usd}
    if as_json:
        _print_json(result)
        return
    swarm = result["swarm"]
    out.print(
        f"{inline(problems[0].name)}: {nodes} nodes ({network}), {result['rounds_run']} rounds; "
        f"baseline {_fmt(swarm['baseline'])} → swarm best {_fmt(swarm['best'])}; "
        f"{_reached(swarm, result)}; {swarm['messages']} messages, "
        f"{swarm['verifications']} replays, {swarm['disputes']} disputes, "
        f"{swarm['accepted_fake_claims']} of {swarm['fake_claims']} fake claims accepted",
        highlight=False,
    )
    if gateway is not None:
        out.print(f"evaluations' {usage_text(gateway.usage)}", highlight=False)
    knowledge = result.get("knowledge") or {}
    if knowledge:
        patterns, hypotheses, dag = (knowledge.get(key) or {} for key in
                                     ("patterns", "hypotheses", "dag"))
        out.print(
            f"node {knowledge.get('node', 0)}'s DAG: {dag.get('records', 0)} records, depth "
            f"{dag.get('depth', 0)}; "
            f"patterns {patterns.get('live', 0)} live, {patterns.get('candidate', 0)} candidate, "
            f"{patterns.get('retired', 0)} retired; hypotheses {hypotheses.get('open', 0)} open, "
            f"{hypotheses.get('confirmed', 0)} confirmed, {hypotheses.get('refuted', 0)} refuted, "
            f"{hypotheses.get('withdrawn', 0)} withdrawn",
            highlight=False)
    if len(problems) > 1:
        for row in knowledge.get("problems", ()):
            target = row["target"]
            reached = target is not None and row["best"] is not None and (
                row["best"] >= target if row["direction"] == "maximize" else row["best"] <= target)
            out.print(f"  {inline(str(row['name']))}: verified best {_fmt(row['best'])}"
                      + ("" if target is None else f", target {_fmt(target)}"
                         + (" reached" if reached else " not reached")), highlight=False)
        out.print(f"(the rounds and messages above follow {inline(problems[0].name)}, the first "
                  f"--problem)", highlight=False)
    if keep is not None:
        out.print(f"kept: browse with swarm dag --data-dir {markup(str(keep))} (also playbook, "
                  f"log, dag show, dag tree)", highlight=False)
    if report is not None:
        out.print(f"report: {markup(str(report))}", highlight=False)


def _check_new_directory(keep: Path) -> None:
    """--data-dir must be new or empty: a simulation's records, under another identity, are
    never mixed into a node's own store."""
    try:
        problem = ("a file" if keep.exists() and not keep.is_dir()
                   else "not empty" if keep.is_dir() and any(keep.iterdir()) else "")
    except OSError as error:
        problem = f"unreadable: {error.strerror or error}"
    if problem:
        _fail(f"--data-dir {inline(str(keep))}: give a new or empty directory (this one is "
              f"{inline(problem)})", EXIT_USAGE)


def _reached(swarm: dict[str, Any], result: dict[str, Any]) -> str:
    """When the honest nodes reached the target, in words."""
    first, every = swarm["first_reached_target_round"], swarm["all_honest_reached_round"]
    if result["config"]["problem"]["target"] is None:
        return "no target set"
    if first is None:
        return f"target not reached in {result['rounds_run']} rounds"
    last = f"all honest by round {every}" if every is not None else "not every honest node"
    return f"first at target in round {first}, {last}"


def _default_problem() -> Path:
    """The bundled example a simulation runs without --problem: examples/landing_copy of this
    checkout (the editable install README describes), from whatever directory it is run."""
    here = Path("examples/landing_copy")
    if here.is_dir():
        return here
    bundled = Path(__file__).resolve().parents[2] / "examples" / "landing_copy"
    if (bundled / "problem.toml").is_file():
        return bundled
    _fail("no --problem given and no bundled example found (examples/landing_copy): pass "
          "--problem DIR, e.g. a package `swarm init DIR` made", EXIT_USAGE)


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
