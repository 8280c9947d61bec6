"""`swarm report`: the dashboard's views as one self-contained HTML file, with the answers of
every endpoint the pages ask for computed now and inlined beside the scripts (no network)."""

from __future__ import annotations

import html
import time
from typing import Any

from node.web.page import inlined_page
from node.web.payload import clean, script_json
from node.web.state import DashboardSource, DashboardState

EXPORT_ROWS = 2000  # changelog rows a report carries (the newest)
EXPORT_RECORDS = 600  # attempts whose record and diff a report carries (the newest)


def export_report(source: DashboardSource, problem_ids: list[str] | None = None,
                  start: str = "#/") -> str:
    """The report of `problem_ids` (None: every problem): overview, each problem's page, its
    DAG, the playbook and the simulation, if any. Reads the store: call from a worker thread
    or outside trio."""
    from node.web import graph, views  # networkx loads only when a report is written
    from node.web.series import MAX_POINTS

    state = DashboardState(source)
    with state.lock:
        state.refresh(force=True)
        responses: dict[str, Any] = {"/api/overview": views.overview(state),
                                     "/api/playbook": graph.playbook(state) if state.dag else None,
                                     "/api/simulation": {"report": source.simulation()},
                                     "/api/version": {"version": 0, "attempts": 0}}
        wanted = list(state.logs) if problem_ids is None else problem_ids
        responses["/api/overview"]["problems"] = [
            p for p in responses["/api/overview"]["problems"] if p["id"] in wanted]
        for problem_id in wanted:
            log = state.log(problem_id)
            if log is None:
                continue
            base = f"/api/problem/{problem_id}"
            responses[base] = views.problem_summary(state, log)
            responses[base + "/points"] = views.points(log, 0, MAX_POINTS)
            responses[base + "/rates"] = views.rates(state, log)
            rows = views.changelog(state, log, {"limit": str(EXPORT_ROWS)})
            responses[base + "/changelog"] = {"rows": rows["rows"], "total": rows["total"]}
            shown = graph.graph(state, log)
            responses[base + "/graph"] = shown
            ids = [row["id"] for row in rows["rows"][:EXPORT_RECORDS]]
            ids += [node["id"] for node in shown["nodes"]]
            for record_id in dict.fromkeys(ids):
                if f"/api/record/{record_id}" not in responses:
                    responses[f"/api/record/{record_id}"] = views.record_detail(state, record_id)
    written = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    document = {"responses": clean(responses), "start": start, "written": written}
    names = [p["name"] for p in responses["/api/overview"]["problems"]]
    title = html.escape(clean("swarm report: " + (", ".join(names[:3]) or "no problem")))
    return inlined_page(script_json(document), title)
