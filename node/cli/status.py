"""The `swarm status` and `swarm leaderboard` commands: what a data directory holds, its
problems' verified bests and each peer's standing, read from the store without running a node.

Part of the CLI layer, node/cli/: the only modules that print for humans.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from node.cli.options import (
    EXIT_USAGE,
    DataDir,
    JsonFlag,
    _data_dir,
    _fail,
    _find_problem,
    _fmt,
    _identity,
    _open_store,
    _print_json,
    out,
)
from node.untrusted_text import inline, markup

if TYPE_CHECKING:
    from research_dag import ResearchDag

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


def _read_node_status(path: Path) -> dict[str, Any] | None:
    """The counters a node last wrote, or None (never joined, or the file is not ours)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("drops"), dict):
        return None
    return data


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
        if node.get("room") is False:  # the disk at the reserve (docs/storage.md)
            out.print("[yellow]disk[/]     at this node's reserve of free space: peers' records"
                      " are not stored until there is room (free space, or `swarm gc`)",
                      highlight=False, soft_wrap=True)
        catalogue = node.get("catalogue")
        if isinstance(catalogue, dict) and catalogue.get("full") is True:  # node/catalogue.py
            out.print(f"[yellow]problems[/] {inline(str(catalogue.get('held')))} of others'"
                      " held, the most this node takes: new ones are not (join one by id with"
                      " `swarm join --problems ID`)", highlight=False, soft_wrap=True)
        ballast = node.get("ballast")
        if isinstance(ballast, dict) and ballast.get("held") is False:  # docs/storage.md
            if ballast.get("disabled"):
                why = f"no ballast: {inline(str(ballast['disabled']))}"
            elif ballast.get("released"):
                why = ("full: the ballast was released for this node's own records; peers'"
                       " records are not stored until it can be held again (free space, or"
                       " `swarm gc`)")
            else:
                why = ("no room for this node's ballast: peers' records are not stored until"
                       " there is (free space, or `swarm gc`)")
            out.print(f"[yellow]disk[/]     {why}", highlight=False, soft_wrap=True)
        serving = node.get("sync_serving")
        if isinstance(serving, dict) and serving:  # peers' sync requests, paced or refused
            counted = ", ".join(f"{inline(str(k))} {inline(str(n))}"
                                for k, n in list(serving.items())[:16])
            out.print(f"serving  {counted} (peers' sync requests)", highlight=False,
                      soft_wrap=True)
        if node.get("spot_unchecked"):  # spot checks that could not ask the node's model
            out.print(f"spot     {inline(str(node['spot_unchecked']))} checks could not run, "
                      f"{inline(str(node.get('spot_given_up', 0)))} claims given up (last: "
                      f"{inline(str(node.get('spot_last_failure', '')))})",
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
            "mine": sum(1 for e in experiments if e.author in (me, "local")),  # solo runs: "local"
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


