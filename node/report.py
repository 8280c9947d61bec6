"""Machine-readable and tabular views of loop results and the experiment changelog."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from node.loop import LoopSummary, step_status
from node.noise_gate import gated, judge
from node.untrusted_text import visible
from research_dag import Experiment, Metric, Outcome, Problem

TSV_COLUMNS = ("commit", "parent", "score", "status", "mutation_kind", "description", "fuel")


def summary_json(summary: LoopSummary) -> dict[str, Any]:
    return {
        "problem": summary.problem_id,
        "name": summary.problem_name,
        "direction": summary.direction,
        "target": summary.target,
        "baseline": summary.baseline_score,
        "best": summary.best_score,
        "best_experiment": summary.best_experiment,
        "iterations": summary.iterations,
        "kept": summary.kept,
        "mutator_failures": summary.mutator_failures,
        "fuel_spent": summary.fuel_spent,
        # Distinct candidates evaluated in the sandbox, and their fuel; repeats are answered
        # from the cache (and counted as iterations); redrawn: repeats proposed and drawn again.
        "evaluations": summary.evaluations,
        "evaluation_fuel": summary.evaluation_fuel,
        "repeats": summary.repeats,
        "redrawn": summary.redrawn,
        "drifts": summary.drifts,
        "tokens": {
            "input": summary.usage.input_tokens,
            "output": summary.usage.output_tokens,
            "cost_usd": round(summary.usage.cost_usd, 6),
        },
        "stop_reason": summary.stop_reason,
        "history": [asdict(step) for step in summary.history],
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "score": outcome.score,
        "items": dict(outcome.items),
        "strategy_fuel": outcome.strategy_fuel,
        "evaluator_fuel": outcome.evaluator_fuel,
        "details": dict(outcome.details),
        "stderr_tail": outcome.stderr_tail,
    }


def changelog(
    experiments: Iterable[Experiment],
    metric: Metric,
    trusted: Callable[[Experiment], bool] = lambda experiment: True,
    problem: Problem | None = None,
    gate_lines: bool = True,
) -> list[dict[str, Any]]:
    """Rows in recorded order; a row is `keep` when it beat the best before it. A row that
    `trusted` refuses (a peer's claim we have not reproduced, in a data directory a swarm node
    also used) is `unverified`: shown, never kept, never the best a later row must beat. For a
    `problem` the noise gate judges (it asks a model or draws inputs per candidate), "beat" is
    the gate's decision, and each row's `gate`
    states its interval and test (node/noise_gate.py). A row is `drift` when it equalled the
    best, did not beat it, and an attempt by its author built on it: the loop took it as the
    parent by neutral drift (LoopConfig.drift).

    The gate costs 20-60 ms a row (its permutation test and bootstrap), so it is computed only
    where it decides or is shown: an unverified row gets no gate line (nothing was decided on
    it; before, a history of thousands of peers' claims took minutes), and with `gate_lines`
    False (the TSV, which has no gate column) only rows that beat the best are judged."""
    experiments = list(experiments)
    built_on = {(e.parent, e.author) for e in experiments if e.parent is not None}
    rows: list[dict[str, Any]] = []
    best: float | None = None
    best_outcome: Outcome | None = None
    shows_gate = problem is not None and gated(problem)
    for experiment in experiments:
        outcome = experiment.outcome
        score = outcome.score if outcome.status == "ok" else None
        believed = trusted(experiment)
        # Judged now when the gate may keep it (it keeps only what beats the best's score) or
        # its line is shown; a row whose status needs to know, later, and only then.
        judged = problem is not None and believed and score is not None and (
            gate_lines or metric.better(score, best))
        decision = judge(problem, outcome, best_outcome) if judged and problem else None
        kept = believed and score is not None and (
            decision.kept if decision is not None else metric.better(score, best))
        previous = best_outcome
        if kept:
            best, best_outcome = score, outcome
        if not believed:
            status = "unverified"
        elif not experiment.parent:
            status = "baseline"
        elif (not kept and score is not None and score == best
              and (experiment.id, experiment.author) in built_on
              and (decision if judged or problem is None
                   else judge(problem, outcome, previous)) is None):
            status = "drift"
        else:
            status = step_status(outcome, kept)
        rows.append(
            {
                "commit": experiment.id[:10],
                "parent": (experiment.parent or "")[:10],
                "score": score,
                "status": status,
                "mutation_kind": experiment.mutation_kind,
                "description": experiment.description,
                "fuel": outcome.fuel,
            }
        )
        if shows_gate:
            rows[-1]["gate"] = "" if decision is None else decision.describe()
    return rows


def changelog_tsv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(TSV_COLUMNS)
    for row in rows:
        score = "" if row["score"] is None else f"{row['score']:.6g}"
        cells = [
            row["commit"],
            row["parent"],
            score,
            row["status"],
            # Peers write both: a TSV cell holds no tab, newline or terminal control.
            _cell(row["mutation_kind"]),
            _cell(row["description"]),
            row["fuel"],
        ]
        writer.writerow(cells)
    return buffer.getvalue()


def _cell(text: object) -> str:
    return visible(str(text).replace("\t", " ").replace("\n", " "))
