"""A Research DAG that keeps headers in memory and whole records in the store (issue 10): it
answers every query as the DAG that keeps everything does, holds at most its cache of whole
records, and a node built on it still hands a late joiner the full history."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.identity import Identity, sign_record
from node.mutators import OfflineMutator
from node.net.memory import MemoryHub
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
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
    Verification,
)

DIRECTIONS: list[tuple[str, Direction]] = [("up", "maximize"), ("down", "minimize")]
PROBLEMS = [
    Problem(name=name, statement=f"optimise {name}", mutable=["strategy.py"],
            metric=Metric(name="score", direction=direction),
            files={"strategy.py": b"def solve(inputs):\n    return inputs\n"})
    for name, direction in DIRECTIONS
]


@st.composite
def histories(draw: st.DrawFn) -> list[Record]:
    """Problems, lineages of experiments (some crashed, some naming a parent of the other
    problem), verifications, a pattern, hypotheses and experiments testing them."""
    records: list[Record] = list(PROBLEMS)
    experiments: list[Experiment] = []
    for n in range(draw(st.integers(1, 25))):
        problem = PROBLEMS[draw(st.integers(0, 1))]
        parent = draw(st.none() | st.sampled_from(experiments)) if experiments else None
        ok = draw(st.booleans()) or parent is None
        experiment = Experiment(
            problem=problem.id, parent=None if parent is None else parent.id,
            strategy={"strategy.py": f"# {n}\n"},
            outcome=Outcome(status="ok", score=float(draw(st.integers(0, 9)))) if ok
            else Outcome(status="crash"),
            mutation_kind=draw(st.sampled_from(["perturb", "prune"])), created_ms=draw(
                st.integers(0, 5)))
        experiments.append(experiment)
        records.append(experiment)
    for experiment in draw(st.lists(st.sampled_from(experiments), max_size=6)):
        records.append(Verification(experiment=experiment.id, outcome=experiment.outcome,
                                    match=draw(st.booleans()), created_ms=draw(st.integers(0, 5))))
    pattern = Pattern(mutation_kind="perturb", text="perturb helps",
                      supporting=[e.id for e in experiments[:3]], created_ms=1)
    hypothesis = Hypothesis(pattern=pattern.id, problem=PROBLEMS[1].id, mutation_kind="perturb",
                            text="try it", created_ms=2)
    tester = Experiment(problem=PROBLEMS[1].id, strategy={"strategy.py": "# tests\n"},
                        hypothesis_id=hypothesis.id, outcome=Outcome(status="ok", score=1.0))
    records += [pattern, hypothesis, tester]
    return draw(st.permutations(records))


def answers(dag: ResearchDag) -> list[object]:
    """Every query, on every record, as plain values."""
    def ids(records: list[Experiment] | list[Record] | list[Verification] | list[Hypothesis]
            | list[Pattern]) -> list[str]:
        return [r.id for r in records]

    found: list[object] = [dag.snapshot(), sorted(dag.missing()), ids(dag.records()),
                           ids(dag.patterns(include_retired=True)), ids(dag.findings()),
                           dag.to_json()]
    for problem in PROBLEMS:
        best = dag.best(problem.id, lambda e: e.outcome.score != 9.0)
        found += [ids(dag.experiments(problem.id)), None if best is None else best.id,
                  ids(dag.frontier(problem.id)), ids(dag.hypotheses_for(problem.id)),
                  sorted(dag.authors(problem.id)),
                  {k: ids(v) for k, v in dag.findings_by_kind(problem.id).items()}]
    for record_id in sorted(dag.ids()):
        found += [ids(dag.children(record_id)), ids(dag.lineage(record_id)),
                  ids(dag.verifications_of(record_id)), ids(dag.tested_by(record_id))]
    return found


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=histories(), cache=st.integers(1, 4))
def test_a_bounded_dag_answers_as_the_whole_one(
    tmp_path_factory: pytest.TempPathFactory, records: list[Record], cache: int
) -> None:
    path = tmp_path_factory.mktemp("bounded") / "records.sqlite"
    with RecordStore.open(path, durable=False) as store:
        store.add_many(records)
        bounded = store.load_dag(cache=cache)
        assert bounded.kept() <= cache
        assert answers(bounded) == answers(ResearchDag(records))
        bounded.prefetch(records[::2])  # as intake does: what they name, held or not
        assert answers(bounded) == answers(ResearchDag(records))
        assert bounded.kept() <= cache
        assert bounded.get_many([r.id for r in records[::-1]]) == records[::-1]
        assert bounded.kept() <= cache  # what a peer fetched was not kept


def test_a_dag_without_a_store_keeps_every_record() -> None:
    experiments = [Experiment(problem=PROBLEMS[0].id, strategy={"strategy.py": f"# {n}\n"},
                              outcome=Outcome(status="ok", score=1.0)) for n in range(50)]
    dag = ResearchDag([*PROBLEMS, *experiments], cache=1)
    assert dag.kept() == 52 and dag.get(experiments[0].id) == experiments[0]


async def test_a_node_keeps_its_cache_of_records_and_serves_all_history(tmp_path: Path) -> None:
    author = Identity.from_seed(b"\x05" * 32)
    problem = sign_record(PROBLEMS[0].model_copy(update={"author": author.peer_id}), author)
    assert isinstance(problem, Problem)
    made: list[Record] = [problem]
    parent: str | None = None
    for n in range(300):
        experiment = sign_record(Experiment(
            problem=problem.id, parent=parent, strategy={"strategy.py": f"# {n}\n" * 40},
            outcome=Outcome(status="ok", score=float(n)), author=author.peer_id,
            created_ms=n), author)
        made.append(experiment)
        parent = experiment.id if n % 3 else parent

    def no_evaluator(problem: Problem):  # type: ignore[no-untyped-def]
        raise AssertionError("nothing is researched here")

    hub = MemoryHub(seed=3)
    config = NodeConfig(problems=(), dag_cache=16)
    with RecordStore.open(tmp_path / "a.sqlite") as store_a, \
            RecordStore.open(tmp_path / "b.sqlite") as store_b:
        async with hub.open_node("a") as net_a, hub.open_node("b") as net_b:
            a = SwarmNode(Identity.from_seed(b"\x01" * 32), net_a, store_a, no_evaluator,
                          OfflineMutator(), config)
            for start in range(0, len(made), 64):
                await a.take(made[start : start + 64])
            assert len(a.dag) == len(made) and a.dag.kept() <= 16
            late = SwarmNode(Identity.from_seed(b"\x02" * 32), net_b, store_b, no_evaluator,
                             OfflineMutator(), config)
            await net_b.connect("/memory/a")
            with trio.fail_after(30):
                assert await late.sync.sync_with("a") == len(made)
            assert late.dag.ids() == a.dag.ids() and a.dag.kept() <= 16
            assert late.dag.kept() <= 16
            best = late.dag.best(problem.id)
            assert best is not None and best.outcome.score == 299.0


def test_an_id_prefetched_as_not_held_is_held_once_added(tmp_path: Path) -> None:
    experiment = Experiment(problem=PROBLEMS[0].id, strategy={"strategy.py": "# x\n"},
                            outcome=Outcome(status="ok", score=1.0))
    with RecordStore.open(tmp_path / "records.sqlite", durable=False) as store:
        store.add(PROBLEMS[0])
        dag = store.load_dag(cache=2)
        dag.prefetch([experiment])
        assert experiment.id not in dag and dag.header(experiment.id) is None
        store.add(experiment)  # a node stores first, then adds to its DAG
        dag.add(experiment)
        assert experiment.id in dag and dag.header(experiment.id) is not None
        assert dag.experiments(PROBLEMS[0].id) == [experiment]
