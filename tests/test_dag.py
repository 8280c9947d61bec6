"""Tests of the Research DAG: queries on a hand-built history, order-free merging, exports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from research_dag import (
    Direction,
    Experiment,
    Hypothesis,
    Metric,
    Outcome,
    Pattern,
    Problem,
    Record,
    ResearchDag,
    Status,
    Verification,
)

GRAPHML = "{http://graphml.graphdrawing.org/xmlns}"
DIRECTIONS: list[Direction] = ["maximize", "minimize"]


def make_problem(name: str = "p", direction: Direction = "maximize") -> Problem:
    return Problem(
        name=name,
        statement=f"optimise {name}",
        metric=Metric(name="score", direction=direction),
        mutable=["strategy.py"],
        files={"strategy.py": b"def solve(inputs):\n    return inputs\n"},
    )


def make_experiment(
    problem: Problem,
    tag: str,
    *,
    parent: Experiment | None = None,
    score: float | None = 1.0,
    status: Status = "ok",
    kind: str = "perturb",
    at: int = 0,
    hypothesis: Hypothesis | None = None,
) -> Experiment:
    return Experiment(
        problem=problem.id,
        parent=None if parent is None else parent.id,
        strategy={"strategy.py": f"# {tag}\n"},
        mutation_kind=kind if parent is not None else "baseline",
        hypothesis_id=None if hypothesis is None else hypothesis.id,
        outcome=Outcome(status=status, score=score if status == "ok" else None),
        created_ms=at,
    )


def make_verification(experiment: Experiment, match: bool = True, at: int = 0) -> Verification:
    return Verification(
        experiment=experiment.id, outcome=experiment.outcome, match=match, created_ms=at
    )


def make_pattern(
    supporting: list[Experiment], kind: str = "perturb", retired: bool = False, at: int = 0
) -> Pattern:
    return Pattern(
        mutation_kind=kind,
        text=f"{kind} helps",
        supporting=[e.id for e in supporting],
        retired=retired,
        created_ms=at,
    )


def make_hypothesis(pattern: Pattern, problem: Problem, at: int = 0) -> Hypothesis:
    return Hypothesis(
        pattern=pattern.id,
        problem=problem.id,
        mutation_kind=pattern.mutation_kind,
        text="try it here",
        created_ms=at,
    )


def history(direction: Direction) -> tuple[ResearchDag, Problem, dict[str, Experiment]]:
    """A small lineage: scores go up for maximize, down for minimize (sign flips)."""
    sign = 1.0 if direction == "maximize" else -1.0
    p = make_problem(direction=direction)
    base = make_experiment(p, "base", score=sign * 1.0, at=1)
    e1 = make_experiment(p, "e1", parent=base, score=sign * 2.0, kind="perturb", at=2)
    e2 = make_experiment(p, "e2", parent=base, score=sign * 0.5, kind="prune", at=3)
    e3 = make_experiment(p, "e3", parent=e1, score=sign * 3.0, kind="prune", at=4)
    e4 = make_experiment(p, "e4", parent=e1, status="crash", kind="swap", at=5)
    e5 = make_experiment(p, "e5", parent=e3, score=sign * 3.0, kind="swap", at=6)
    e = {"base": base, "e1": e1, "e2": e2, "e3": e3, "e4": e4, "e5": e5}
    # Reversed arrival: every child comes before its parent, the problem last.
    return ResearchDag([*reversed(e.values()), p]), p, e


def test_queries_on_a_maximize_history() -> None:
    dag, p, e = history("maximize")
    assert dag.problems() == [p]
    assert dag.experiments(p.id) == [e[n] for n in ("base", "e1", "e2", "e3", "e4", "e5")]
    assert dag.best(p.id) == e["e3"]  # e5 ties e3 and came later
    assert dag.lineage(e["e5"].id) == [e["base"], e["e1"], e["e3"], e["e5"]]
    assert dag.findings(p.id) == [e["e1"], e["e3"]]
    assert dag.findings() == [e["e1"], e["e3"]]
    assert dag.findings_by_kind(p.id) == {"perturb": [e["e1"]], "prune": [e["e3"]]}
    assert dag.frontier(p.id) == [e["e2"], e["e3"], e["e5"]]
    assert dag.children(e["base"].id) == [e["e1"], e["e2"]]
    assert dag.children(p.id, "has_experiment") == dag.experiments(p.id)
    assert dag.missing() == set()


def test_queries_on_a_minimize_history() -> None:
    dag, p, e = history("minimize")
    assert dag.best(p.id) == e["e3"]
    assert dag.findings_by_kind(p.id) == {"perturb": [e["e1"]], "prune": [e["e3"]]}
    assert dag.frontier(p.id) == [e["e2"], e["e3"], e["e5"]]


def test_best_breaks_exact_ties_by_smallest_id() -> None:
    p = make_problem()
    a, b = (make_experiment(p, tag, score=5.0, at=7) for tag in ("a", "b"))
    dag = ResearchDag([p, a, b])
    assert dag.best(p.id) == min(a, b, key=lambda e: e.id)


def test_best_skips_what_the_verifier_does_not_accept() -> None:
    # Issue 8 finding 12: a forged higher claim is never the best a view shows.
    dag, p, e = history("maximize")
    forged = make_experiment(p, "forged", parent=e["e3"], score=1e9, at=99)
    dag.add(forged)
    assert dag.best(p.id) == forged  # unfiltered: the claim as made
    assert dag.best(p.id, lambda x: x.id != forged.id) == e["e3"]
    assert dag.best(p.id, lambda x: False) is None


def test_best_is_none_without_problem_or_ok_experiment() -> None:
    p = make_problem()
    crash = make_experiment(p, "c", status="crash")
    dag = ResearchDag([crash])
    assert dag.best(p.id) is None  # problem record not known yet
    dag.add(p)
    assert dag.best(p.id) is None  # nothing ok
    assert dag.best(crash.id) is None  # not a problem id
    assert dag.best("f" * 64) is None


def test_lineage_stops_at_a_missing_parent() -> None:
    p = make_problem()
    base = make_experiment(p, "base")
    child = make_experiment(p, "child", parent=base, score=2.0)
    grandchild = make_experiment(p, "grandchild", parent=child, score=3.0)
    dag = ResearchDag([p, child, grandchild])
    assert dag.lineage(grandchild.id) == [child, grandchild]
    assert dag.lineage("0" * 64) == []
    assert dag.missing() == {base.id}
    assert not dag.is_finding(child)  # parent unknown
    assert dag.is_finding(grandchild)
    dag.add(base)
    assert dag.lineage(grandchild.id) == [base, child, grandchild]
    assert dag.is_finding(child)


def test_verifications_patterns_and_hypotheses() -> None:
    dag, p, e = history("maximize")
    e3 = e["e3"]
    v_late, v_early = make_verification(e3, True, at=9), make_verification(e3, False, at=8)
    pattern = make_pattern([e["e1"], e3], at=10)
    retired = make_pattern([e["e1"]], kind="swap", retired=True, at=11)
    other = make_problem("other")
    hypothesis = make_hypothesis(pattern, other, at=12)
    test = make_experiment(other, "test", hypothesis=hypothesis, at=13)
    for record in (test, hypothesis, retired, pattern, v_late, v_early, other):
        assert dag.add(record)
    assert dag.verifications_of(e3.id) == [v_early, v_late]
    assert dag.verifications_of(e["e1"].id) == []
    assert dag.patterns() == [pattern]
    assert dag.patterns(include_retired=True) == [pattern, retired]
    assert dag.hypotheses_for(other.id) == [hypothesis]
    assert dag.hypotheses_for(p.id) == []
    assert dag.tested_by(hypothesis.id) == [test]
    assert dag.children(e3.id, "supports") == [pattern]
    assert dag.children(pattern.id) == [hypothesis]
    assert dag.children(hypothesis.id) == [other, test]
    assert dag.records("verification") == [v_early, v_late]
    assert len(dag) == 7 + 7


def test_exports_are_sorted_and_parse() -> None:
    dag, p, e = history("minimize")
    hostile = make_experiment(p, "x", parent=e["e5"], kind='bad\x00\x1b"<&>\\kind', at=99)
    dag.add(hostile)
    exported = dag.to_json()
    assert json.loads(json.dumps(exported)) == exported
    assert [n["id"] for n in exported["nodes"]] == sorted(dag.snapshot()[0])
    assert len(exported["edges"]) == len(dag.snapshot()[1])
    root = ET.fromstring(dag.to_graphml())
    assert len(root.findall(f"{GRAPHML}graph/{GRAPHML}node")) == len(dag)
    assert len(root.findall(f"{GRAPHML}graph/{GRAPHML}edge")) == len(exported["edges"])
    dot = dag.to_dot()
    assert dot.startswith("digraph research_dag {") and dot.endswith("}\n")
    assert f'"{e["base"].id}" -> "{e["e1"].id}" [label="has_child"];' in dot


# ---- properties --------------------------------------------------------------------------


@st.composite
def related_records(draw: st.DrawFn) -> list[Record]:
    """Problems, experiment trees, verifications, patterns, hypotheses and their tests."""
    directions = st.sampled_from(DIRECTIONS)
    problems = [make_problem(f"p{i}", draw(directions)) for i in range(draw(st.integers(1, 2)))]
    times = st.integers(0, 5)  # few distinct times, so ordering ties on id get exercised
    scores = st.sampled_from([None, 0.0, 1.0, 2.0])
    experiments: list[Experiment] = []
    hypotheses: list[Hypothesis] = []
    patterns: list[Pattern] = []

    def draw_experiments(count: int) -> None:
        for _ in range(count):
            problem = draw(st.sampled_from(problems))
            family = [e for e in experiments if e.problem == problem.id]
            parent = draw(st.sampled_from([None, *family]))
            score = draw(scores)
            experiments.append(
                make_experiment(
                    problem,
                    f"e{len(experiments)}",
                    parent=parent,
                    score=score,
                    status="crash" if score is None else "ok",
                    kind=draw(st.sampled_from(["perturb", "prune"])),
                    at=draw(times),
                    hypothesis=draw(st.sampled_from([None, *hypotheses])),
                )
            )

    draw_experiments(draw(st.integers(0, 6)))
    for _ in range(draw(st.integers(0, 2))):
        supporting = draw(st.lists(st.sampled_from(experiments), max_size=3)) if experiments else []
        patterns.append(make_pattern(supporting, retired=draw(st.booleans()), at=draw(times)))
        for problem in draw(
            st.lists(st.sampled_from(problems), max_size=2, unique_by=lambda p: p.id)
        ):
            hypotheses.append(make_hypothesis(patterns[-1], problem, at=draw(times)))
    draw_experiments(draw(st.integers(0, 6)))
    verifications = [
        make_verification(e, draw(st.booleans()), at=draw(times))
        for e in draw(st.lists(st.sampled_from(experiments), max_size=3))
    ] if experiments else []  # fmt: skip
    return [*problems, *experiments, *patterns, *hypotheses, *verifications]


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[Record], list[Record]]:
    """A record set and one arrival sequence of it: any order, any record repeated."""
    records = draw(related_records())
    repeats = draw(st.lists(st.sampled_from(records), max_size=len(records)))
    return records, draw(st.permutations([*records, *repeats]))


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(arrivals())
def test_any_order_and_duplication_give_the_same_dag(
    case: tuple[list[Record], list[Record]],
) -> None:
    records, arrival = case
    reference = ResearchDag(records)
    shuffled = ResearchDag()
    newly_added = [record.id for record in arrival if shuffled.add(record)]
    assert sorted(newly_added) == sorted({r.id for r in records})  # True exactly once per id
    assert shuffled.snapshot() == reference.snapshot()
    assert len(shuffled) == len(reference)
    assert shuffled.to_json() == reference.to_json()
    assert shuffled.to_graphml() == reference.to_graphml()
    assert shuffled.to_dot() == reference.to_dot()
    for problem in reference.problems():
        assert shuffled.best(problem.id) == reference.best(problem.id)
        assert shuffled.frontier(problem.id) == reference.frontier(problem.id)
        assert shuffled.hypotheses_for(problem.id) == reference.hypotheses_for(problem.id)
    assert shuffled.findings_by_kind() == reference.findings_by_kind()


@PROPERTY
@given(related_records())
def test_exports_parse_for_any_history(records: list[Record]) -> None:
    dag = ResearchDag(records)
    exported = dag.to_json()
    assert json.loads(json.dumps(exported)) == exported
    root = ET.fromstring(dag.to_graphml())
    nodes = root.findall(f"{GRAPHML}graph/{GRAPHML}node")
    assert sorted(node.attrib["id"] for node in nodes) == [n["id"] for n in exported["nodes"]]
    assert dag.missing() == set()  # every reference was generated alongside
