"""The Research DAG page's graph (a bounded subgraph, laid out in Python with networkx so the
browser only draws it) and the playbook page's patterns and hypotheses."""

from __future__ import annotations

import time
from typing import Any

import networkx as nx

from node.knowledge import Shown, shown_patterns
from node.web.state import DashboardState, ProblemLog
from research_dag import Hypothesis, ResearchDag, Verdict

MAX_NODES = 400  # nodes one graph shows at most (experiments beyond are left out, counted)
RECENT = 120  # newest experiments always shown
PLAYBOOK_EVERY_S = 5.0  # the least time between two derivations for the playbook page
PLAYBOOK_COST = 20  # and at least this many times the last one took (5 % of a reader)
MAX_PLAYBOOK = 500  # patterns and hypotheses listed at most
X_STEP, Y_STEP = 120.0, 46.0


def graph(state: DashboardState, log: ProblemLog) -> dict[str, Any]:
    """The problem, its experiments (all when few; else the kept and baseline ones, the newest,
    and the lineage of the best), and the patterns, hypotheses and verdicts around them, with
    positions: layers by depth along x, barycentre order along y."""
    dag = state.require_dag()
    entries = log.entries
    chosen: dict[str, str] = {}  # id -> label kind
    if len(entries) <= MAX_NODES - 50:
        picked = entries
    else:
        marked = [e for e in entries if e.status in ("keep", "baseline")][-(MAX_NODES // 2):]
        picked = marked + entries[-RECENT:]
    for entry in picked:
        chosen[entry.header.id] = "experiment"
    if log.best_id is not None:
        for experiment in dag.lineage(log.best_id)[-MAX_NODES // 4 :]:
            chosen[experiment.id] = "experiment"
    nodes: dict[str, dict[str, Any]] = {
        log.problem.id: {"id": log.problem.id, "kind": "problem", "label": log.problem.name[:40]}}
    for record_id in chosen:
        at = log.index.get(record_id)
        held = None if at is None else entries[at]
        score = None if held is None else held.header.score
        nodes[record_id] = {
            "id": record_id, "kind": "experiment",
            "status": "unknown" if held is None else held.status,
            "author": 0 if held is None else held.author,
            "best": record_id == log.best_id,
            "label": "-" if score is None else f"{score:.4g}"}
    for hypothesis_id in dag.hypothesis_ids_for(log.problem.id)[:100]:
        nodes[hypothesis_id] = {"id": hypothesis_id, "kind": "hypothesis", "label": "hypothesis"}
    edges = [(s, t, rel) for s, t, rel in dag.edges_from(list(nodes)) if rel != "verified_by"]
    # Patterns a shown experiment supports, and verdicts on shown hypotheses.
    for _, target, rel in edges:
        if rel in ("supports", "contradicts", "decided_by") and target not in nodes:
            header = dag.header(target)
            if header is not None and len(nodes) < MAX_NODES + 100:
                nodes[target] = {"id": target, "kind": header.kind, "label": header.kind}
    edges += [(s, t, rel) for s, t, rel in dag.edges_from(
        [n for n, v in nodes.items() if v["kind"] == "pattern"]) if t in nodes]
    children = {t for _, t, rel in edges if rel == "has_child"}
    # The problem links to its roots only: an edge to each of 100,000 experiments says nothing.
    shown = [(s, t, rel) for s, t, rel in dict.fromkeys(edges) if s in nodes and t in nodes
             and (rel != "has_experiment" or t not in children)]
    positions = layout(list(nodes), [(s, t) for s, t, _ in shown])
    for node_id, (x, y) in positions.items():
        nodes[node_id]["x"], nodes[node_id]["y"] = x, y
    return {"nodes": list(nodes.values()),
            "edges": [{"source": s, "target": t, "rel": rel} for s, t, rel in shown],
            "experiments": len(entries), "shown": len(chosen),
            "authors": log.authors, "version": state.version}


def layout(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """Positions: x by topological generation (a parent left of its children), y by the mean
    position of a node's parents (few crossings), nodes without edges in a last column."""
    graph_: Any = nx.DiGraph()
    graph_.add_nodes_from(nodes)
    graph_.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(graph_):  # ids are hashes, so never; drawn anyway
        spread = nx.spring_layout(graph_, seed=0, scale=X_STEP * 10)
        return {n: (float(x), float(y)) for n, (x, y) in spread.items()}
    positions: dict[str, tuple[float, float]] = {}
    for depth, generation in enumerate(nx.topological_generations(graph_)):
        def rank(node: str) -> tuple[float, str]:
            above = [positions[p][1] for p in graph_.predecessors(node) if p in positions]
            return (sum(above) / len(above) if above else 0.0, node)

        ordered = sorted(generation, key=rank)
        middle = (len(ordered) - 1) / 2
        for row, node in enumerate(ordered):
            positions[node] = (depth * X_STEP, (row - middle) * Y_STEP)
    return positions


def _patterns(state: DashboardState, dag: ResearchDag) -> Shown:
    """`shown_patterns`, derived again when the store changed, but at most once per
    PLAYBOOK_EVERY_S or per PLAYBOOK_COST times its last derivation's time, whichever is
    longer: a derivation reads every experiment (1.2 s at 20,000), under the one lock every
    other page waits on."""
    cached = state.patterns
    now = time.monotonic()
    if cached is not None:
        version, when, took, shown = cached
        if version == state.version or now - when < max(PLAYBOOK_EVERY_S, PLAYBOOK_COST * took):
            return shown
    shown = shown_patterns(dag, state.ledger)
    state.patterns = (state.version, now, time.monotonic() - now, shown)
    return shown


def playbook(state: DashboardState) -> dict[str, Any]:
    """The patterns as `swarm playbook` shows them (node/knowledge.py `shown_patterns`: this
    node's current pattern of each class, then held heads of the others) with their evidence,
    and the hypotheses they suggested with their outcomes; empty lists until there are any."""
    dag = state.require_dag()
    shown, here, open_here = _patterns(state, dag)
    heads = shown[:MAX_PLAYBOOK]
    names = {problem.id: problem.name for problem in dag.problems()}
    rows = [{"id": p.id, "mutation_kind": p.mutation_kind, "text": p.text,
             "derived_here": p.id in here,
             "status": p.status or ("retired" if p.retired else "live"),
             "supporting": len(p.supporting), "contradicting": len(p.contradicting),
             "control": len(p.control or ()), "success_rate": p.success_rate,
             "mean_delta": p.mean_delta, "domains": list(p.domains),
             "problems": [names.get(i, i[:10]) for i in (p.problems or ())]} for p in heads]
    verdicts: dict[str, Verdict] = {}
    for verdict in dag.records("verdict"):
        if isinstance(verdict, Verdict):
            held = verdicts.get(verdict.hypothesis)
            if held is None or (verdict.created_ms, verdict.id) < (held.created_ms, held.id):
                verdicts[verdict.hypothesis] = verdict
    hypotheses = []
    for hypothesis in dag.records("hypothesis")[-MAX_PLAYBOOK:]:
        if not isinstance(hypothesis, Hypothesis):
            continue
        decided = verdicts.get(hypothesis.id)
        hypotheses.append({
            "id": hypothesis.id, "mutation_kind": hypothesis.mutation_kind,
            "text": hypothesis.text, "problem": names.get(hypothesis.problem,
                                                          hypothesis.problem[:10]),
            "pattern": hypothesis.pattern, "expected_lift": hypothesis.expected_lift,
            "tests": len(dag.linked_ids(hypothesis.id, "tested_by")),
            "state": decided.result if decided is not None
            else "open" if hypothesis.id in open_here else "withdrawn",
            "verdict": None if decided is None else decided.text})
    return {"patterns": rows, "hypotheses": hypotheses, "version": state.version}
