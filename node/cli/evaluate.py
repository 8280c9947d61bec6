"""`swarm eval`: evaluate strategies once each (the package's own, or given files and JSON Lines
candidates, in one process) and show status, score, checklist, fuel and stderr."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from node.cli.cases_view import is_case_detail, print_cases
from node.cli.models import EvalModel, evaluate_once, open_gateway
from node.cli.options import (
    EXIT_FAILURE,
    BaseUrl,
    JsonFlag,
    Model,
    PackageDir,
    _fmt,
    _load_problem,
    _print_json,
    _runtime,
    out,
)
from node.untrusted_text import inline, markup, visible

if TYPE_CHECKING:
    from research_dag import Outcome, Problem


def eval_command(
    package: PackageDir,
    strategy: Annotated[
        list[Path] | None,
        typer.Option(help="A strategy file to evaluate instead of the package's own "
                     "(repeatable: several are scored in this one process)."),
    ] = None,
    candidates: Annotated[
        Path | None,
        typer.Option(help="JSON Lines of candidates to score ('-': stdin), one object per line "
                     'from mutable file names to their source: {"strategy.py": "..."}.'),
    ] = None,
    as_json: JsonFlag = False,
    eval_model: EvalModel = "standin",
    model: Model = None,
    base_url: BaseUrl = None,
) -> None:
    """Evaluate strategies once each and show status, score, checklist, fuel and stderr: the
    package's own, or every --strategy file and --candidates line, in one process."""
    from node.cli.candidates import candidates_of
    from node.problem import baseline_files
    from node.report import outcome_json
    from sandbox import Evaluator

    problem = _load_problem(package)
    chosen = candidates_of(problem, baseline_files(problem), strategy or [], candidates)
    runtime = _runtime(quiet=as_json)
    gateway = None if problem.model is None else open_gateway(
        eval_model, model, base_url, None, None)
    with Evaluator(runtime, problem) as evaluator:  # one start-up for every candidate
        scored = [(candidate.label, evaluate_once(problem, evaluator, gateway, candidate.files))
                  for candidate in chosen]
    batch = len(strategy or []) > 1 or candidates is not None
    if as_json:
        _print_json([{"candidate": label, **outcome_json(outcome)} for label, outcome in scored]
                    if batch else outcome_json(scored[0][1]))
    else:
        for label, outcome in scored:
            if batch:
                out.print(f"[bold]{markup(label)}[/]", highlight=False)
            _print_outcome(problem, outcome)
    if any(outcome.status != "ok" for _, outcome in scored):
        raise typer.Exit(EXIT_FAILURE)


def _print_outcome(problem: Problem, outcome: Outcome) -> None:
    colour = "green" if outcome.status == "ok" else "red"
    out.print(f"status: [bold {colour}]{outcome.status}[/]", highlight=False)
    out.print(
        f"score:  {_fmt(outcome.score)} ({inline(problem.metric.name)}, "
        f"{problem.metric.direction})",
        highlight=False,
    )
    for name, passed in outcome.items.items():
        mark = "[green]✓[/]" if passed else "[red]✗[/]"
        out.print(f"  {mark} {inline(name)}", highlight=False)
    out.print(
        f"fuel:   strategy {outcome.strategy_fuel:,}, evaluator {outcome.evaluator_fuel:,}",
        highlight=False,
    )
    text = problem.runner is not None  # a skill: each case's output and verdicts below
    for key, value in outcome.details.items():
        if text and is_case_detail(key):
            continue
        out.print(f"  {inline(key)}: {inline(str(value))}", highlight=False, soft_wrap=True)
    if text:
        print_cases(problem, outcome)
    if outcome.stderr_tail.strip():
        out.print("stderr (tail):", highlight=False)
        out.print(visible(outcome.stderr_tail.rstrip()), markup=False, highlight=False,
                  soft_wrap=True)
