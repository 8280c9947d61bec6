"""The bundled examples: each loads, evaluates deterministically in the sandbox, resists
gaming, and improves on its baseline under the offline loop (all seeded: no flakiness)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from node.llm import ModelGateway, StandinProvider
from node.loop import LoopConfig, ResearchLoop
from node.model_evaluations import ModelEvaluations
from node.mutators import OfflineMutator
from node.problem import baseline_files, load_package
from node.publish.validate import validate_problem
from node.store import RecordStore
from research_dag import Outcome, Problem
from sandbox import Evaluator, Runtime

EXAMPLES = Path(__file__).parent.parent / "examples"
NAMES = [
    "landing_copy", "finance_factors", "search_ranking", "tiny_training", "faster_code",
    "credit_scoring", "spam_filter", "job_scheduling", "skill_landing_copy", "tsp_heuristic",
]
# Iterations each example gets here (fewer than the 50 of the done criteria, for speed) and
# the seed; the loop is deterministic, so these runs always end the same way.
ITERATIONS = {
    "landing_copy": 50,
    "finance_factors": 15,
    "search_ranking": 15,
    "tiny_training": 8,
    "faster_code": 15,
    "credit_scoring": 5,  # switches as model knobs (2026-12-07b): first keep on iteration 5
    "spam_filter": 8,  # the family search (issue 14) first improves on iteration 5 at seed 0
    "job_scheduling": 3,
    # ~3 s an evaluation; noise-gated: the first kept change is on iteration 16 since the model
    # gets half the proposals and gated non-improvements no longer count as its wins (was 5)
    "tsp_heuristic": 16,
    "skill_landing_copy": 40,
}


def _evaluation(evaluator: Evaluator, problem: Problem) -> Callable[[Mapping[str, str]], Outcome]:
    """What a loop calls: through a stand-in model gateway when the package asks a model."""
    if problem.model is None:
        return evaluator.evaluate
    evaluations = ModelEvaluations(evaluator, problem, ModelGateway(StandinProvider()))
    return lambda files: evaluations(files).outcome


@pytest.fixture(scope="module", params=NAMES)
def example(request: pytest.FixtureRequest) -> Problem:
    return load_package(EXAMPLES / request.param)


def test_every_example_passes_every_publication_check(runtime: Runtime, example: Problem) -> None:
    validation = validate_problem(runtime, example)
    assert [c.name for c in validation.checks] == [
        "baseline", "deterministic", "headroom", "target", "world", "gaming", "discriminates",
        "sealed", "memoriser", "held_out", "no_leak",
    ]
    assert validation.ok, validation.failures


def test_gaming_outputs_never_score_better(runtime: Runtime, example: Problem) -> None:
    with Evaluator(runtime, example) as evaluator:
        evaluate = _evaluation(evaluator, example)
        baseline = evaluate(baseline_files(example))
        assert baseline.status == "ok" and baseline.score is not None
        for output in ("float('nan')", "float('inf')", "None", "[]", "{}", "'x' * 100", "0"):
            gamed = evaluate(
                {example.mutable[0]: f"def solve(*args):\n    return {output}\n"}
            )
            if gamed.status == "ok" and gamed.score is not None:
                assert not example.metric.better(gamed.score, baseline.score), output


async def test_the_offline_loop_improves_on_the_baseline(
    runtime: Runtime, example: Problem, tmp_path: Path
) -> None:
    with Evaluator(runtime, example) as evaluator, RecordStore.open(tmp_path / "r.sqlite") as store:
        summary = await ResearchLoop(
            example,
            _evaluation(evaluator, example),
            OfflineMutator(),
            store,
            LoopConfig(iterations=ITERATIONS[example.name], seed=0),
        ).run()
    assert summary.baseline_score is not None and summary.best_score is not None
    assert example.metric.better(summary.best_score, summary.baseline_score)
    # The done criterion: <= 60 % to >= 95 %, 3 running
    if example.name in ("landing_copy", "skill_landing_copy"):
        assert summary.baseline_score <= 0.6
        assert summary.stop_reason == "target_reached"
