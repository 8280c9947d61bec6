"""`swarm dashboard` and `swarm report`: the live dashboard of a data directory in the browser,
and its views exported as one self-contained HTML file; plus serving the dashboard from inside
`swarm join`, `run` and `simulate` (`--dashboard`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from node.cli.options import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    DataDir,
    _data_dir,
    _fail,
    _find_problem,
    _open_store,
    err,
    out,
)
from node.untrusted_text import markup

if TYPE_CHECKING:
    import trio

    from node.web import DashboardSource

DEFAULT_PORT = 8321
T = TypeVar("T")
Port = Annotated[int, typer.Option("--port", min=0, max=65535,
                                   help="Port to listen on (0: any free port).")]


def dashboard(
    data_dir: DataDir = None,
    port: Port = DEFAULT_PORT,
    host: Annotated[str, typer.Option(
        help="Address to listen on. Anything but 127.0.0.1 publishes the dashboard to "
        "whoever can reach it (read-only).")] = "127.0.0.1",
) -> None:
    """Serve the live dashboard of a data directory (a running node's too) until Ctrl-C."""
    import trio

    from node.web import DashboardError, DashboardSource

    directory = _data_dir(data_dir)
    if not (directory / "records.sqlite").exists():
        _fail(f"no record store in {directory} (give --data-dir, or run or join first)",
              EXIT_USAGE)
    with _open_store(data_dir) as store:
        source = DashboardSource(store=lambda: store, me=me_of(directory), external=True)

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await start_dashboard(nursery, source, port, host)

        failure = ""
        try:
            trio.run(main)
        except* KeyboardInterrupt:
            err.print("[yellow]stopped[/]")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except* DashboardError as group:
            failure = str(group.exceptions[0])
        if failure:
            _fail(failure)


async def start_dashboard(nursery: trio.Nursery, source: DashboardSource, port: int,
                          host: str = "127.0.0.1") -> str:
    """Serve the dashboard as a task of `nursery` (the node's); print its URL once listening,
    and a warning when it is not on the loopback."""
    from node.web import is_local, serve_dashboard

    if not is_local(host):
        err.print(f"[bold yellow]warning:[/] the dashboard listens on {markup(host)}: anyone "
                  "who can reach this machine can read this node's records (read-only)",
                  highlight=False)
    url: str = await nursery.start(lambda task_status: serve_dashboard(
        source, host=host, port=port, task_status=task_status))
    out.print(f"dashboard: [bold]{markup(url)}[/]", highlight=False, soft_wrap=True)
    return url


def me_of(directory: Path) -> str:
    """Our peer id if the data directory has an identity (a view never makes one), else the
    solo author "local"."""
    from node.cli.dag_view import _me

    return _me(directory)


def report(
    problem: Annotated[str | None, typer.Argument(
        metavar="[PROBLEM]", help="A problem name, id prefix or package directory (default: "
        "every problem).")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")
                      ] = Path("swarm-report.html"),
    data_dir: DataDir = None,
) -> None:
    """Write the dashboard's views as one self-contained HTML file (opens with no network)."""
    from node.store import StoreError
    from node.web import DashboardSource, export_report
    from research_dag import Problem

    directory = _data_dir(data_dir)
    with _open_store(data_dir) as store:
        try:
            wanted = None
            if problem is not None:
                held = [p for p in store.iter_records(kind="problem") if isinstance(p, Problem)]
                found = _find_problem(problem, held, directory)
                if found is None:
                    _fail(f"no problem of package {problem!r} in {directory}", EXIT_USAGE)
                wanted = [found.id]
            page = export_report(DashboardSource(store=lambda: store, me=me_of(directory)),
                                 wanted, start="#/" if wanted is None else f"#/problem/{wanted[0]}")
        except StoreError as error:
            _fail(str(error))
    write_report(output, page)
    out.print(f"report: {markup(str(output))}", highlight=False)


def write_report(path: Path, page: str) -> None:
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        _fail(f"cannot write the report to {path}: {error.strerror or error}")


async def run_with_dashboard(source: DashboardSource, port: int,
                             work: Callable[[], Awaitable[T]]) -> T:
    """`work()` with the dashboard served beside it, in one nursery; stops it when done."""
    import trio

    async with trio.open_nursery() as nursery:
        await start_dashboard(nursery, source, port)
        result = await work()
        nursery.cancel_scope.cancel()
    return result
