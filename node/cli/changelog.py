"""`swarm log`: the changelog of a problem (every attempt, kept or not, crashes included) as a
table, TSV, JSON or a Markdown document."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from node.cli.options import (
    DataDir,
    JsonFlag,
    _data_dir,
    _fail,
    _find_problem,
    _fmt,
    _load_problem,
    _print_json,
    out,
)
from node.cli.run import _trusted
from node.untrusted_text import inline, markup


def log(
    problem_query: Annotated[str, typer.Argument(
        metavar="PROBLEM",
        help="A package directory, a problem name or an id prefix (as swarm status lists them).",
    )],
    tsv: Annotated[
        Path | None,
        typer.Option(help="Also write the changelog as TSV to this file ('-' = stdout)."),
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="Print it as a Markdown document: phases between new bests, each "
        "attempt's change, delta, verdict and the patterns it supported.")] = False,
) -> None:
    """Print the changelog of a problem: every attempt, kept or not, crashes included."""
    from rich.table import Table

    from node.cli.changelog_markdown import changelog_markdown, knowledge_of
    from node.report import changelog, changelog_tsv
    from node.store import RecordStore, StoreError
    from research_dag import Experiment, Problem

    directory = _data_dir(data_dir)
    try:
        with RecordStore.open(directory / "records.sqlite") as store:
            stored = [p for p in store.iter_records(kind="problem") if isinstance(p, Problem)]
            found = _find_problem(problem_query, stored, directory)
            problem = _load_problem(Path(problem_query)) if found is None else found
            experiments = [
                record
                for record in store.iter_records(kind="experiment", problem=problem.id)
                if isinstance(record, Experiment)
            ]
            trusted = _trusted(store, data_dir)
            knowledge = knowledge_of(store, problem.id) if markdown else ([], [])
    except StoreError as error:
        _fail(str(error))
    # The TSV alone (to stdout) has no gate column: the gate judges only the rows it may keep.
    only_tsv = not markdown and tsv is not None and str(tsv) == "-"
    rows = changelog(experiments, problem.metric, trusted, problem, gate_lines=not only_tsv)
    if markdown:
        sys.stdout.write(changelog_markdown(problem, experiments, rows, *knowledge))
        return
    if tsv is not None:
        text = changelog_tsv(rows)
        if str(tsv) == "-":
            sys.stdout.write(text)
            return
        try:
            tsv.write_text(text)
        except OSError as error:
            _fail(f"cannot write {tsv}: {error.strerror or error}")
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print(f"no experiments recorded for {inline(problem.name)} yet "
                  f"(swarm run {markup(problem_query)})", highlight=False)
        return
    table = Table(title=f"{inline(problem.name)} ({inline(problem.metric.name)}, "
                  f"{problem.metric.direction})")
    for column in ("commit", "score", "status", "mutation kind", "description"):
        table.add_column(column, overflow="fold")
    styles = {"keep": "green", "baseline": "bold", "discard": "dim", "unverified": "yellow",
              "drift": "cyan"}
    for row in rows:
        table.add_row(
            row["commit"],
            _fmt(row["score"]),
            row["status"],
            inline(row["mutation_kind"]),
            markup(row["description"])
            + (f"\n[dim]noise gate: {markup(row['gate'])}[/]" if row.get("gate") else ""),
            style=styles.get(row["status"], "red"),
        )
    out.print(table)
    if tsv is not None:
        out.print(f"wrote {len(rows)} rows to {markup(str(tsv))}", highlight=False)
