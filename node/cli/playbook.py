"""`swarm playbook`: the patterns this data directory holds, as a person reads a playbook:
statement, change class, evidence counts, P(lift > 0), scope, and whether this node's own
derivation produces the same pattern (a peer's pattern is shown, never trusted)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import typer

from node.cli.dag_view import (
    STATUSES,
    View,
    cut,
    finite,
    open_view,
    pattern_heads,
    pattern_scope,
    pattern_status,
)
from node.cli.options import DataDir, JsonFlag, _print_json, out

if TYPE_CHECKING:
    from research_dag import Pattern


@dataclass(frozen=True)
class EvidenceCounts:
    """A pattern's evidence as counts: its class's attempts and improvements, the control's
    (other classes on the same problems), and P(lift > 0) from the two Beta posteriors."""

    successes: int
    tries: int
    control_successes: int
    control_tries: int
    # A list at its bound holds the newest evidence only (research_dag MAX_LIST): the counts,
    # and so P(lift > 0), are then those of that subset, not the curator's totals.
    truncated: bool = False

    @property
    def lift_probability(self) -> float:
        return float(lift_probability(self.successes, self.tries, self.control_successes,
                                      self.control_tries))

    @property
    def lift_estimate(self) -> float:
        """Posterior mean of the lift (the curator's estimate, from these counts)."""
        return ((1 + self.successes) / (2 + self.tries)
                - (1 + self.control_successes) / (2 + self.control_tries))

    def shown(self) -> str:
        """P(lift > 0) for a table cell: marked "≈" when a list is truncated."""
        return ("≈" if self.truncated else "") + f"{self.lift_probability:.3f}"


def evidence_counts(view: View, pattern: Pattern) -> EvidenceCounts:
    """Supporting experiments are improvements of the class, contradicting ones attempts that
    did not improve; the control's improvements are counted from headers (never loaded)."""
    control = list(pattern.control or ())
    found = view.headers(control)
    wins = sum(1 for header in found.values() if view.is_finding(header))
    from research_dag import MAX_LIST

    supporting = len(pattern.supporting)
    truncated = MAX_LIST in (supporting, len(pattern.contradicting), len(control))
    return EvidenceCounts(supporting, supporting + len(pattern.contradicting), wins, len(control),
                          truncated)


def lift_probability(successes: int, tries: int, control_successes: int,
                     control_tries: int) -> Fraction:
    """P(p_class > p_control), p_class ~ Beta(1+s, 1+n-s), p_control ~ Beta(1+c, 1+m-c), exact:
    sum over i < a1 of B(a2+i, b1+b2) / ((b1+i) B(1+i, b1) B(a2, b2)) (integer parameters;
    Evan Miller's closed form for comparing two Beta posteriors)."""
    a1, b1 = 1 + successes, 1 + tries - successes
    a2, b2 = 1 + control_successes, 1 + control_tries - control_successes
    if min(a1, b1, a2, b2) < 1:
        raise ValueError("successes must be within 0..tries")
    total = Fraction(0)
    for i in range(a1):
        total += _beta(a2 + i, b1 + b2) / ((b1 + i) * _beta(1 + i, b1) * _beta(a2, b2))
    return total


@cache
def _beta(a: int, b: int) -> Fraction:
    """The Beta function of positive integers: (a-1)! (b-1)! / (a+b-1)!."""
    return Fraction(math.factorial(a - 1) * math.factorial(b - 1), math.factorial(a + b - 1))


def derived_here(view: View) -> set[str] | None:
    """The ids of the patterns this node's own derivation produces from the evidence it counts
    (the curator's `patterns_derived_here`); None while no curator is installed: then every
    held pattern is taken as derived here."""
    import playbook

    # The curator (playbook/curator.py) is being written alongside this view: until it lands,
    # its function is absent and nothing is marked (the brief's interim rule).
    derive: Any = getattr(playbook, "patterns_derived_here", None)
    if derive is None:
        return None
    return {str(getattr(item, "id", item)) for item in derive(view.dag, view.ledger.verified)}


def playbook(
    show_all: Annotated[bool, typer.Option(
        "--all", help="Also candidate and retired patterns.")] = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """The live patterns (the latest snapshot of each): statement, change class, evidence,
    P(lift > 0), scope; a pattern this node does not derive itself is marked."""
    with open_view(data_dir) as view:
        rows = playbook_rows(view, show_all)
    if as_json:
        _print_json(finite(rows))
        return
    if not rows:
        out.print("no live pattern yet" + ("" if show_all else " (--all: candidates and "
                  "retired too)"), highlight=False)
        return
    from rich.table import Table

    table = Table(title="playbook" + (" (all)" if show_all else ""))
    for column in ("pattern", "class", "status", "statement", "+/-/ctl", "P(lift>0)", "scope"):
        table.add_column(column, overflow="fold")
    for row in rows:
        mark = "" if row["derived_here"] else " (not derived here)"
        scope = ", ".join(row["problem_names"]) + (
            f" [{', '.join(row['domains'])}]" if row["domains"] else "")
        table.add_row(row["id"][:10], cut(row["class"], 40), row["status"] + mark,
                      cut(row["statement"], 300),
                      f"{row['supporting']}/{row['contradicting']}/{row['control']}",
                      ("≈" if row["evidence_truncated"] else "") + f"{row['p_lift']:.3f}",
                      cut(scope, 200),
                      style={"retired": "dim", "candidate": "yellow"}.get(row["status"], ""))
    out.print(table)


def playbook_rows(view: View, show_all: bool) -> list[dict[str, Any]]:
    """The playbook as plain values (the --json document): live first, then by P(lift > 0)."""
    from research_dag import Pattern

    here = derived_here(view)
    patterns = [p for p in view.dag.records("pattern") if isinstance(p, Pattern)]
    rows: list[dict[str, Any]] = []
    for pattern in pattern_heads(patterns):
        status = pattern_status(pattern)
        if status != "live" and not show_all:
            continue
        counts = evidence_counts(view, pattern)
        scope = pattern_scope(view, pattern)
        rows.append({
            "id": pattern.id, "class": pattern.mutation_kind, "status": status,
            "statement": pattern.text, "refuted_if": pattern.refuted_if,
            "supporting": len(pattern.supporting), "contradicting": len(pattern.contradicting),
            "control": counts.control_tries, "control_improved": counts.control_successes,
            "success_rate": pattern.success_rate, "mean_delta": pattern.mean_delta,
            "p_lift": counts.lift_probability, "lift": counts.lift_estimate,
            "evidence_truncated": counts.truncated,
            "problems": scope, "problem_names": [view.raw_name(p) or p[:10] for p in scope],
            "domains": list(pattern.domains), "author": pattern.author,
            "derived_here": here is None or pattern.id in here,
            "supersedes": pattern.supersedes,
        })
    rows.sort(key=lambda row: (STATUSES.index(row["status"]), -row["p_lift"], row["id"]))
    return rows
