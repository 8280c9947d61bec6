"""Simulation results: the JSON report and a self-contained HTML page with plots (no network)."""

from __future__ import annotations

import html
import json
from typing import Any

from node.sim.results import SimResults
from node.untrusted_text import json_text, visible

WIDTH, HEIGHT, PAD = 720, 260, 40


def build_report(results: SimResults) -> dict[str, Any]:
    config = results.config
    problem = results.problem
    honest = [s for s in results.nodes if not s.liar]
    reached = [s.reached_target_round for s in honest if s.reached_target_round is not None]
    last = results.history[-1] if results.history else {}
    return {
        "config": {
            "nodes": config.nodes,
            "network": config.network,
            "rounds": config.rounds,
            "faults": config.faults.__dict__,
            "seed": config.seed,
            "k": config.k,
            "problem": {
                "id": problem.id,
                "name": problem.name,
                "direction": problem.metric.direction,
                "target": problem.metric.target,
            },
        },
        "rounds_run": results.rounds_run,
        "nodes": [
            {
                "index": s.index,
                "peer_id": s.peer_id,
                "liar": s.liar,
                "spammer": s.spammer,
                "churned": s.churned,
                "best": s.best_by_round[-1] if s.best_by_round else None,
                "reached_target_round": s.reached_target_round,
                "best_by_round": s.best_by_round,
            }
            for s in results.nodes
        ],
        "swarm": {
            "baseline": results.baseline,
            "best": last.get("swarm_best"),
            "first_reached_target_round": min(reached) if reached else None,
            "all_honest_reached_round": max(reached) if len(reached) == len(honest) else None,
            "messages": last.get("messages", 0),
            "verifications": last.get("verifications", 0),
            "disputes": last.get("disputes", 0),
            "evaluations": last.get("evaluations", 0),
            "fuel": last.get("fuel", 0),
            "fake_claims": results.fake_claims,
            "accepted_fake_claims": results.accepted_fake_claims,
        },
        "knowledge": results.knowledge,
        "history": results.history,
    }


def _polyline(points: list[tuple[float, float]], style: str) -> str:
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline fill="none" points="{text}" style="{style}"/>'


def _chart(title: str, series: list[tuple[str, list[float | None], str]], rounds: int) -> str:
    values = [v for _, data, _ in series for v in data if v is not None]
    if not values:
        return f"<h2>{html.escape(title)}</h2><p>no data</p>"
    low, high = min(values), max(values)
    span = (high - low) or 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = PAD + (WIDTH - 2 * PAD) * (i / max(1, rounds - 1))
        return x, HEIGHT - PAD - (HEIGHT - 2 * PAD) * ((v - low) / span)

    lines = []
    for _, data, style in series:
        points = [xy(i, v) for i, v in enumerate(data) if v is not None]
        if points:
            lines.append(_polyline(points, style))
    axis = (
        f'<text x="{PAD}" y="{PAD - 8}">{high:.4g}</text>'
        f'<text x="{PAD}" y="{HEIGHT - PAD + 16}">{low:.4g}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end">round {rounds}</text>'
    )
    legend = " · ".join(html.escape(name) for name, _, _ in series[-2:])
    return (
        f"<h2>{html.escape(title)}</h2><svg width='{WIDTH}' height='{HEIGHT}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}' role='img'>"
        f"<rect x='0' y='0' width='{WIDTH}' height='{HEIGHT}' fill='#fafafa'/>"
        + "".join(lines)
        + axis
        + f"</svg><p class='legend'>{legend}</p>"
    )


def render_html(report: dict[str, Any]) -> str:
    history = report["history"]
    rounds = len(history)
    problem = report["config"]["problem"]
    series: list[tuple[str, list[float | None], str]] = [
        (
            f"node {n['index']}" + (" (liar)" if n["liar"] else ""),
            n["best_by_round"],
            "stroke:#c33;stroke-width:1;opacity:.5"
            if n["liar"]
            else "stroke:#69c;stroke-width:1;opacity:.5",
        )
        for n in report["nodes"]
    ]
    series.append(
        ("swarm best (honest)", [h["swarm_best"] for h in history], "stroke:#111;stroke-width:3")
    )
    traffic: list[tuple[str, list[float | None], str]] = [
        ("messages", [float(h["messages"]) for h in history], "stroke:#393;stroke-width:2"),
        (
            "verifications",
            [float(h["verifications"]) for h in history],
            "stroke:#36c;stroke-width:2",
        ),
        ("disputes", [float(h["disputes"]) for h in history], "stroke:#c33;stroke-width:2"),
    ]
    swarm = report["swarm"]
    rows = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>"
        for key, value in swarm.items()
    )
    knowledge = report.get("knowledge") or {}
    data = html.escape(json_text(report))
    name = html.escape(visible(problem["name"]))  # an author's text: no bidi reordering
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>swarm simulation: {name}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:780px}}
table{{border-collapse:collapse}}th,td{{text-align:left;padding:2px 12px 2px 0}}
.legend{{color:#666;font-size:12px}}svg text{{font-size:11px;fill:#444}}</style></head>
<body><h1>{name} — {report["config"]["nodes"]} nodes,
{html.escape(report["config"]["network"])} network, {rounds} rounds</h1>
<p>{html.escape(problem["direction"])} (target {problem["target"]}); faults
{html.escape(json.dumps(report["config"]["faults"]))}</p>
<table>{rows}</table>
<p>Knowledge at the end (node {html.escape(str(knowledge.get("node")))}):
{html.escape(json.dumps({k: v for k, v in knowledge.items() if k != "node"}))}</p>
{_chart("Best score per node and for the swarm, by round", series, rounds)}
{_chart("Cumulative messages, verifications and disputes", traffic, rounds)}
<script type="application/json" id="report">{data}</script>
</body></html>
"""
