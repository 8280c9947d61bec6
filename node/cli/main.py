"""The `swarm` entry point: the one Typer app, every command registered on it in help order, and
Ctrl-C outside a command's own handling turned into exit code 130."""

from __future__ import annotations

import sys

import typer

from node.cli import (
    changelog,
    dag,
    dashboard,
    evaluate,
    gc,
    playbook,
    pose,
    run,
    simulate,
    status,
    swarm,
)
from node.cli.options import EXIT_INTERRUPTED, err

app = typer.Typer(
    name="swarm",
    help="A peer-to-peer autoresearch swarm: mutate a strategy, evaluate it in a WebAssembly "
    "sandbox, keep what wins, log every attempt.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold API keys
)
app.command()(run.run)
app.command("eval")(evaluate.eval_command)
app.command()(changelog.log)
app.command()(swarm.join)
app.command()(status.status)
app.command()(status.leaderboard)
app.command()(simulate.simulate)
app.command()(pose.init)
app.command()(pose.pose)
app.command()(gc.gc)
app.add_typer(dag.app, name="dag")
app.command()(playbook.playbook)
app.command()(dashboard.dashboard)
app.command()(dashboard.report)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(EXIT_INTERRUPTED)
