"""`swarm dag tree PROBLEM`: a problem's lineage as a rich Tree: scores and deltas, kept vs
discarded, failed attempts folded into one line, peers' results and the ones we adopted marked,
and bounded (depth, width and total) however big the DAG is: the rest is counted, never drawn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from node.cli.dag_view import View, cut, delta_text, open_view, score_text
from node.cli.dag_view import depth as lineage_depth
from node.cli.options import EXIT_USAGE, DataDir, _fail, _find_problem, out

if TYPE_CHECKING:
    from rich.tree import Tree

    from research_dag import Experiment, Header, Problem

MAX_SHOWN = 400  # experiments drawn at most, whatever the limits (the rest are counted)

ProblemQuery = Annotated[str, typer.Argument(
    metavar="PROBLEM", help="A problem name, id prefix or package directory.")]


@dataclass(frozen=True)
class Entry:
    """One line of the tree: an experiment (header) or a note ("12 failed attempts"), under
    the entry at index `parent` (-1: the problem)."""

    parent: int
    header: Header | None = None
    note: str = ""
    folded: int = 0  # failed attempts the note stands for


def tree(
    problem_query: ProblemQuery,
    depth: Annotated[int, typer.Option(min=1, max=10_000, help="Levels drawn at most.")] = 20,
    width: Annotated[int, typer.Option(
        min=1, max=10_000, help="Children drawn per experiment at most (failures fold apart).")
    ] = 5,
    data_dir: DataDir = None,
) -> None:
    """A problem's lineage: each attempt under its parent with score and Δ, kept or discarded,
    failures folded, peers' results and adopted ones marked; bounded for huge DAGs."""
    with open_view(data_dir) as view:
        problem = _find_problem(problem_query, view.dag.problems(), view.directory)
        if problem is None:
            _fail(f"no problem of package {problem_query!r} in {view.directory}", EXIT_USAGE)
        drawn = lineage_tree(view, problem, depth, width)
    out.print(drawn, highlight=False)


def lineage_tree(view: View, problem: Problem, max_depth: int, width: int) -> Tree:
    """The tree of `problem`'s experiments (read as headers; only those drawn are loaded)."""
    from rich.tree import Tree

    from node.leaderboard import verified_best
    from research_dag import Experiment

    headers = view.dag.experiment_headers(problem.id)
    children = _children(headers)
    sizes = _sizes(children)
    entries = _layout(view, children, sizes, max_depth, width)
    shown = [e.header.id for e in entries if e.header is not None]
    records = {r.id: r for r in view.dag.get_many(shown) if isinstance(r, Experiment)}
    best = verified_best(view.dag, view.ledger, problem.id)
    root = Tree(
        f"[bold]{cut(problem.name, 60)}[/] ({cut(problem.metric.name, 40)}, "
        f"{problem.metric.direction}): {len(headers)} experiments, depth "
        f"{lineage_depth(headers)}, verified best "
        f"{score_text(None if best is None else best.outcome.score)}",
        guide_style="dim",
    )
    nodes: list[Tree] = []
    for entry in entries:
        under = root if entry.parent < 0 else nodes[entry.parent]
        if entry.header is None:
            nodes.append(under.add(entry.note))
            continue
        header = entry.header
        nodes.append(under.add(_label(view, header, records.get(header.id), children,
                                      best is not None and best.id == header.id)))
    folded = sum(e.folded for e in entries)
    if len(shown) + folded < len(headers):
        root.add(f"[dim]({len(shown)} of {len(headers)} experiments drawn, {folded} failed "
                 "ones folded; --depth and --width draw more, `swarm dag show ID` shows one)[/]")
    return root


def _children(headers: list[Header]) -> dict[str | None, list[Header]]:
    """Each experiment under its parent; those whose parent is not held are roots (None)."""
    held = {h.id for h in headers}
    children: dict[str | None, list[Header]] = {}
    for header in headers:
        key = header.parent if header.parent in held else None
        children.setdefault(key, []).append(header)
    return children


def _sizes(children: dict[str | None, list[Header]]) -> dict[str, int]:
    """Descendants of every experiment (post-order, without recursion: lineages run deep)."""
    sizes: dict[str, int] = {}
    stack: list[tuple[Header, bool]] = [(h, False) for h in children.get(None, [])]
    while stack:
        header, done = stack.pop()
        below = children.get(header.id, [])
        if done:
            sizes[header.id] = sum(1 + sizes.get(c.id, 0) for c in below)
            continue
        stack.append((header, True))
        stack.extend((child, False) for child in below if child.id not in sizes)
    return sizes


def _layout(view: View, children: dict[str | None, list[Header]], sizes: dict[str, int],
            depth: int, width: int) -> list[Entry]:
    """The lines to draw, parents before children, depth first so the longest line of
    descent is drawn before the budget runs out."""
    entries: list[Entry] = []
    stack: list[tuple[str | None, int, int]] = [(None, -1, 0)]  # (id, its entry, level)
    while stack:
        node, index, level = stack.pop()
        below = children.get(node, [])
        if not below:
            continue
        if level >= depth or len(entries) >= MAX_SHOWN:
            more = sum(1 + sizes.get(c.id, 0) for c in below)
            entries.append(Entry(index, note=f"[dim]… {more} more below[/]"))
            continue
        failed = [c for c in below if c.score is None and not children.get(c.id)]
        rest = sorted((c for c in below if c not in failed),
                      key=lambda c: (-sizes.get(c.id, 0), not view.is_finding(c),
                                     c.created_ms, c.id))
        drawn = rest[:width]
        pushed: list[tuple[str | None, int, int]] = []
        for child in drawn:
            entries.append(Entry(index, header=child))
            pushed.append((child.id, len(entries) - 1, level + 1))
        hidden = rest[width:]
        if hidden:
            descendants = sum(sizes.get(c.id, 0) for c in hidden)
            entries.append(Entry(index, note=f"[dim]… {len(hidden)} more attempt"
                                 f"{'s' if len(hidden) != 1 else ''}"
                                 + (f" ({descendants} below them)" if descendants else "")
                                 + "[/]"))
        if failed:
            entries.append(Entry(index, note=f"[red]{len(failed)} failed attempt"
                                 f"{'s' if len(failed) != 1 else ''}[/] (folded)",
                                 folded=len(failed)))
        stack.extend(reversed(pushed))
    return entries


def _label(view: View, header: Header, experiment: Experiment | None,
           children: dict[str | None, list[Header]], best: bool) -> str:
    if header.parent is None:
        verdict = "[bold]baseline[/]"
    elif view.dag.header(header.parent) is None:
        verdict = "[yellow]parent not held[/]"
    elif view.is_finding(header):
        verdict = "[green]kept[/]"
    elif header.score is None:
        verdict = "[red]failed[/]"
    else:
        verdict = "[dim]discarded[/]"
    text = (f"{verdict} {header.id[:10]} {score_text(header.score)} "
            f"{delta_text(view.delta(header))}")
    if experiment is not None:
        if experiment.outcome.status != "ok":
            text += f" {experiment.outcome.status}"
        text += f"  {cut(experiment.mutation_kind, 30)}: {cut(experiment.description, 60)}"
    if best:
        text += " [bold yellow]★ verified best[/]"
    mine = ("local", view.me)
    if header.author not in mine:
        trust = view.trust(experiment) if experiment is not None else "?"
        text += f" [cyan](peer {cut(header.author, 16)}, {trust})[/]"
        if any(c.author in mine for c in children.get(header.id, [])):
            text += " [magenta]adopted[/]"
    return text

