"""`swarm dag`: browse the Research DAG from the terminal. With no subcommand, the summary per
problem and per domain; `show`, `tree` (node/cli/dag_show.py, dag_tree.py) and `export` here."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from node.cli.dag_show import show
from node.cli.dag_tree import tree
from node.cli.dag_view import (
    STATUSES,
    View,
    cut,
    depth,
    finite,
    hypothesis_state,
    open_view,
    pattern_scope,
    pattern_status,
    score_text,
)
from node.cli.options import EXIT_USAGE, DataDir, JsonFlag, _fail, _print_json, out
from node.untrusted_text import visible

if TYPE_CHECKING:
    from research_dag import Problem

app = typer.Typer(
    help="Browse the Research DAG: a summary (no subcommand), one record, a problem's lineage "
    "tree, or the whole graph exported.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.command()(show)
app.command()(tree)
KINDS = ("experiment", "verification", "pattern", "hypothesis", "verdict")
HYPOTHESIS_STATES = ("open", "confirmed", "refuted", "withdrawn")


@app.callback()
def summary(ctx: typer.Context, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Per problem and domain: records of each kind, DAG depth (the longest lineage), the
    verified best, live/candidate/retired patterns and open/confirmed/refuted/withdrawn
    hypotheses (withdrawn: no verdict, and no longer held open by this node's derivation)."""
    if ctx.invoked_subcommand is not None:
        if data_dir is not None or as_json:
            _fail("give --data-dir and --json after the subcommand (swarm dag show ID "
                  "--data-dir D)", EXIT_USAGE)
        return
    with open_view(data_dir) as view:
        report = summarise(view)
    if as_json:
        _print_json(finite(report))
        return
    _print_summary(report)


def summarise(view: View) -> dict[str, Any]:
    """The summary as plain values (also the --json document)."""
    from node.leaderboard import verified_best

    dag = view.dag
    problems = dag.problems()
    rows: dict[str, dict[str, Any]] = {}
    problem_of: dict[str, str] = {}  # experiment id -> problem id
    for problem in problems:
        headers = dag.experiment_headers(problem.id)
        problem_of.update((h.id, problem.id) for h in headers)
        best = verified_best(dag, view.ledger, problem.id)
        rows[problem.id] = {
            "id": problem.id, "name": problem.name, "domains": list(problem.domains),
            "records": dict.fromkeys(KINDS, 0) | {"experiment": len(headers)},
            "depth": depth(headers),
            "best": None if best is None else best.outcome.score,
            "best_experiment": None if best is None else best.id,
            "patterns": dict.fromkeys(STATUSES, 0),
            "hypotheses": dict.fromkeys(HYPOTHESIS_STATES, 0),
        }
    for experiment_id, verifications in view.ledger.votes.items():
        owner = problem_of.get(experiment_id)
        if owner is not None:
            rows[owner]["records"]["verification"] += len(verifications)
    held, heads, open_here = _patterns_by_problem(view, rows.keys())
    for problem_id, row in rows.items():
        row["records"]["pattern"] = len(held.get(problem_id, ()))
        for status in heads.get(problem_id, {}).values():
            row["patterns"][status] += 1
    _count_hypotheses(view, rows, open_here)
    attached = len(problems) + len(set().union(*held.values())) + sum(
        n for row in rows.values() for kind, n in row["records"].items() if kind != "pattern")
    return {
        "records": len(dag), "unattached": max(0, len(dag) - attached),
        "missing": len(dag.missing()),
        "problems": list(rows.values()),
        "domains": _domains(problems, rows, held, heads),
    }


def _patterns_by_problem(view: View, problem_ids: Iterable[str]
                         ) -> tuple[dict[str, set[str]], dict[str, dict[str, str]], frozenset[str]]:
    """Per problem: the ids of every pattern snapshot citing it, and the patterns `swarm
    playbook` shows (this node's current one of each class, held heads of the others) with
    their status; and the ids of the hypotheses the same derivation holds open."""
    from node.cli.playbook import current_patterns
    from research_dag import Pattern

    wanted = set(problem_ids)
    patterns = [p for p in view.dag.records("pattern") if isinstance(p, Pattern)]
    held: dict[str, set[str]] = {}
    heads: dict[str, dict[str, str]] = {}
    for pattern in patterns:
        for problem_id in set(pattern_scope(view, pattern)) & wanted:
            held.setdefault(problem_id, set()).add(pattern.id)
    shown = current_patterns(view)
    for pattern in shown.patterns:
        for problem_id in set(pattern_scope(view, pattern)) & wanted:
            heads.setdefault(problem_id, {})[pattern.id] = pattern_status(pattern)
    return held, heads, shown.open


def _count_hypotheses(view: View, rows: dict[str, dict[str, Any]], open_here: frozenset[str]
                      ) -> None:
    from research_dag import Verdict

    dag = view.dag
    for problem_id, row in rows.items():
        hypotheses = dag.hypothesis_ids_for(problem_id)
        row["records"]["hypothesis"] = len(hypotheses)
        for hypothesis_id in hypotheses:
            verdicts = [v for v in dag.get_many(dag.linked_ids(hypothesis_id, "decided_by"))
                        if isinstance(v, Verdict)]
            row["records"]["verdict"] += len(verdicts)
            row["hypotheses"][hypothesis_state(verdicts, hypothesis_id in open_here)] += 1


def _domains(problems: list[Problem], rows: dict[str, dict[str, Any]],
             held: dict[str, set[str]], heads: dict[str, dict[str, str]]
             ) -> list[dict[str, Any]]:
    """The summary per domain: a problem counts in each of its domains; a pattern citing
    several problems of one domain counts once in it."""
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        for domain in problem.domains or ["(none)"]:
            grouped.setdefault(domain, []).append(problem.id)
    result = []
    for domain in sorted(grouped):
        members = [rows[p] for p in grouped[domain]]
        statuses: dict[str, str] = {}
        for problem_id in grouped[domain]:
            statuses.update(heads.get(problem_id, {}))
        records = {k: sum(m["records"][k] for m in members) for k in KINDS}
        records["pattern"] = len(set().union(*(held.get(p, set()) for p in grouped[domain])))
        result.append({
            "domain": domain, "problems": len(members), "records": records,
            "depth": max(m["depth"] for m in members),
            "patterns": {k: sum(1 for s in statuses.values() if s == k) for k in STATUSES},
            "hypotheses": {k: sum(m["hypotheses"][k] for m in members)
                           for k in HYPOTHESIS_STATES},
        })
    return result


def _print_summary(report: dict[str, Any]) -> None:
    from rich.table import Table

    out.print(f"{report['records']} records ({report['unattached']} not attached to a held "
              f"problem, {report['missing']} referenced but not held yet)", highlight=False)
    if not report["problems"]:
        out.print("no problem held yet (swarm pose, swarm join)", highlight=False)
        return
    table = Table(title="problems")
    for column in ("problem", "id", "exp", "ver", "depth", "best", "patterns l/c/r",
                   "hyp o/c/r/w", "domains"):
        # A name cut into lines is unreadable ("credit_scor" / "ing" in 100 columns): it stays on
        # one line, shortened only when it must be; the domains fold.
        table.add_column(column, overflow="ellipsis" if column == "problem" else "fold",
                         no_wrap=column == "problem", ratio=2 if column == "domains" else None)
    for row in report["problems"]:
        table.add_row(cut(row["name"], 40), row["id"][:10], *_counts(row),
                      score_text(row["best"]), *_states(row),
                      cut(", ".join(row["domains"]), 60))
    out.print(table)
    table = Table(title="domains")
    for column in ("domain", "problems", "exp", "ver", "depth", "patterns l/c/r",
                   "hyp o/c/r/w"):
        table.add_column(column, overflow="fold")
    for row in report["domains"]:
        table.add_row(cut(row["domain"], 40), str(row["problems"]), *_counts(row),
                      *_states(row))
    out.print(table)


def _counts(row: dict[str, Any]) -> tuple[str, str, str]:
    records = row["records"]
    return str(records["experiment"]), str(records["verification"]), str(row["depth"])


def _states(row: dict[str, Any]) -> tuple[str, str]:
    patterns, hypotheses = row["patterns"], row["hypotheses"]
    return ("/".join(str(patterns[k]) for k in STATUSES),
            "/".join(str(hypotheses[k]) for k in HYPOTHESIS_STATES))


@app.command()
def export(
    format: Annotated[str, typer.Option(
        "--format", help="graphml (Gephi, yEd, networkx), json or dot (Graphviz).")] = "json",
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write to this file instead of standard output.")] = None,
    data_dir: DataDir = None,
) -> None:
    """The whole DAG as a graph file: every record a node (kind, author, time, a one-line
    summary), every reference an edge; ids referenced but not held are nodes of kind missing."""
    if format not in ("graphml", "json", "dot"):
        _fail(f"unknown format {format!r}: use graphml, json or dot", EXIT_USAGE)
    from node.untrusted_text import json_text

    with open_view(data_dir) as view:
        dag = view.dag
        if format == "json":  # ASCII: every peer's control or bidi character a \u escape
            text = json_text(finite(dag.to_json())) + "\n"
        else:  # authors are a peer's text: shown as escapes, never raw (XML forbids most)
            text = visible(dag.to_graphml() if format == "graphml" else dag.to_dot())
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        _fail(f"cannot write {output}: {error.strerror or error}")
    out.print(f"wrote {len(text):,} characters of {format} to {visible(str(output))}",
              markup=False, highlight=False)
