"""`swarm eval` on a text strategy (a skill): each case's output and its per-check verdicts,
read from the evaluator's `case:<id>` (one "1"/"0" per check in the checklist's order, samples
separated by spaces) and `out:<id>` details (docs/experiment-package.md#text-strategies).

Part of the CLI layer, node/cli/: the only modules that print for humans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.cli.options import out
from node.untrusted_text import inline

if TYPE_CHECKING:
    from research_dag import Outcome, Problem

CASE, OUTPUT = "case:", "out:"


def is_case_detail(key: str) -> bool:
    return key.startswith((CASE, OUTPUT))


def print_cases(problem: Problem, outcome: Outcome) -> None:
    """One block per case: its verdicts (✓/✗ per check, per sample) and its output."""
    checklist = list(problem.checklist)
    cases = sorted(key for key in outcome.details if key.startswith(CASE))
    if not cases:
        return
    out.print(f"cases ({len(cases)}):", highlight=False)
    for key in cases:
        case = key.removeprefix(CASE)
        verdicts = str(outcome.details[key])
        marks = []
        for sample in verdicts.split()[:16]:
            marks.append(" ".join(
                f"[green]✓[/] {inline(_name(checklist, i))}" if bit == "1"
                else f"[red]✗[/] {inline(_name(checklist, i))}"
                for i, bit in enumerate(sample[:64])))
        shown = " | ".join(marks) if marks else inline(verdicts)
        out.print(f"  [bold]{inline(case)}[/]  {shown}", highlight=False, soft_wrap=True)
        output = outcome.details.get(f"{OUTPUT}{case}")
        if output is not None:
            out.print(f"      {inline(str(output))}", highlight=False, soft_wrap=True)


def _name(checklist: list[str], index: int) -> str:
    return checklist[index] if index < len(checklist) else f"check {index + 1}"
