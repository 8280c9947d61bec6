"""`swarm playbook`: the patterns this data directory holds, as a person reads a playbook:
statement, change class, evidence counts, P(lift > 0), scope, and whether this node's own
derivation produces the same pattern (a peer's pattern is shown, never trusted)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any

import typer

from node.cli.dag_view import (
    STATUSES,
    View,
    cut,
    finite,
    open_view,
    pattern_scope,
    pattern_status,
)
from node.cli.options import DataDir, JsonFlag, _print_json, out

if TYPE_CHECKING:
    from node.knowledge import Shown
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
    """P(p_class > p_control), p_class ~ Beta(1+s, 1+n-s), p_control ~ Beta(1+c, 1+m-c), exactly
    (the curator's statistics, playbook/stats.py)."""
    from playbook import prob_greater

    if not (0 <= successes <= tries and 0 <= control_successes <= control_tries):
        raise ValueError("successes must be within 0..tries")
    return prob_greater(1 + successes, 1 + tries - successes, 1 + control_successes,
                        1 + control_tries - control_successes)


def derived_here(view: View) -> set[str]:
    """The ids of the patterns this node's own derivation produces from the evidence it counts
    (the curator's current pattern of each class): a held pattern that is not among them came
    from a peer, or from evidence this node does not count, and is shown, never used."""
    return current_patterns(view).here


def current_patterns(view: View, older: bool = False) -> Shown:
    """What `swarm playbook` and `swarm dag` show and count (node/knowledge.py
    `shown_patterns`): this node's current pattern of each class, derived now by its own
    evidence rule, then held heads of the other classes (`older`: of every class)."""
    from node.knowledge import shown_patterns

    return shown_patterns(view.dag, view.ledger, older)


def playbook(
    show_all: Annotated[bool, typer.Option(
        "--all", help="Also candidate and retired patterns.")] = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """The live patterns: this node's current pattern of each class (derived now from the
    evidence it counts), then held ones of other classes, marked as not derived here:
    statement, change class, evidence, P(lift > 0), scope."""
    with open_view(data_dir) as view:
        rows = playbook_rows(view, show_all)
    if as_json:
        _print_json(finite(rows))
        return
    if not rows:
        out.print("no live pattern yet" + ("" if show_all else " (--all: candidates, retired "
                  "ones and the held patterns of a class this node derives otherwise)"),
                  highlight=False)
        return
    from rich.table import Table

    table = Table(title="playbook" + (" (all)" if show_all else ""))
    for column in ("pattern", "class", "status", "statement", "+/-/ctl", "P(lift>0)", "scope"):
        table.add_column(column, overflow="fold")
    for row in rows:
        mark = (" (not derived here)" if not row["derived_here"]
                else "" if row["stored"] else " (derived now; stored when the node curates)")
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
    """The playbook as plain values (the --json document): this node's current pattern of each
    class (derived now; `stored`: held as a record, so `swarm dag show` finds it), then the held
    patterns of other classes (a peer's, or one whose evidence this node no longer counts so),
    marked; with `show_all` also candidates, retired ones and held heads of a class this node
    derives otherwise (older lines, peers' versions). Live first, then by P(lift > 0)."""
    shown, here, _ = current_patterns(view, show_all)
    rows: list[dict[str, Any]] = []
    for pattern in shown:
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
            "derived_here": pattern.id in here,
            "stored": pattern.id not in here or view.dag.get(pattern.id) is not None,
            "supersedes": pattern.supersedes,
        })
    rows.sort(key=lambda row: (not row["derived_here"], STATUSES.index(row["status"]),
                               -row["p_lift"], row["id"]))
    return rows
