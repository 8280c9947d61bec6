"""Heuristic packages in the research tools (issue 15): a model's structural rewrite of
tsp_heuristic's function is applied and scored by the loop, `swarm init --template heuristic`
scaffolds a package that passes every publication check, and `swarm pose` accepts one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from recorded_llm import KEY, Script, message, no_sleep

from node.llm import AnthropicClient, BudgetMeter, LLMConfig
from node.loop import LoopConfig, ResearchLoop
from node.mutators import LLMMutator, make_diff
from node.problem import baseline_files, load_package
from node.publish.poser import PoseConfig, Poser
from node.publish.validate import validate_problem
from node.store import RecordStore
from research_dag import Experiment
from sandbox import Evaluator, Runtime, is_heuristic

ROOT = Path(__file__).parent.parent
TSP = ROOT / "examples" / "tsp_heuristic"
TEMPLATE = ROOT / "node" / "publish" / "templates" / "heuristic"
# A rewrite, not a tuned constant: no cache, no weights list, a new helper and a new term (go
# far from the start first, so the tour does not end with a long way back).
REWRITTEN = '''"""Nearest neighbour that saves the cities near the start for the way home."""

import math

HOMEWARD = 0.3  # how much distance from the start adds to a city's priority


def distance(a, b):
    return math.hypot(a[0] - b[0], a[1] - b[1])


def priority(current, unvisited, points, tour):
    here, start = points[current], points[tour[0]]
    return [HOMEWARD * distance(points[c], start) - distance(points[c], here) for c in unvisited]
'''


def _reply(diff: str) -> str:
    return (
        "<hypothesis>Visiting the cities far from the start first leaves the near ones for the "
        "end, so the tour does not close with one long edge.</hypothesis>\n"
        "<mutation_kind>restructure_priority</mutation_kind>\n"
        "<description>priority: a homeward term, no cached features</description>\n"
        f"<diff>\n{diff}</diff>\n"
    )


async def test_a_models_structural_rewrite_of_the_function_is_applied_and_scored(
    runtime: Runtime, tmp_path: Path
) -> None:
    problem = load_package(TSP)
    base = baseline_files(problem)
    diff = make_diff(base, {"strategy.py": REWRITTEN})
    script = Script(message(_reply(diff)))
    config = LLMConfig("anthropic", "claude-sonnet-5-5", KEY, max_retries=2, timeout_s=5.0)
    async with AnthropicClient(config, httpx.MockTransport(script), sleep=no_sleep) as client:
        mutator = LLMMutator(client, BudgetMeter(config), max_tokens=2048)
        with Evaluator(runtime, problem) as evaluator, RecordStore.open(
            tmp_path / "r.sqlite"
        ) as store:
            summary = await ResearchLoop(
                problem, evaluator.evaluate, mutator, store, LoopConfig(iterations=1, seed=0)
            ).run()
            experiments = [
                record for record in store.iter_records("experiment", problem.id)
                if isinstance(record, Experiment)
            ]
    assert "def priority(current, unvisited, points, tour)" in script.prompt(0)
    rewrite = next(e for e in experiments if e.parent is not None)
    assert rewrite.strategy == {"strategy.py": REWRITTEN}
    assert rewrite.mutation_kind == "restructure_priority" and rewrite.mutator == "anthropic"
    assert rewrite.outcome.status == "ok" and rewrite.outcome.score is not None
    assert rewrite.outcome.details["instances"] == 8
    assert summary.baseline_score is not None and summary.best_score is not None
    assert summary.best_score < summary.baseline_score  # better than nearest neighbour
    assert summary.kept == 1


def _swarm(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWARM_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_heuristic_template_passes_every_publication_check(
    runtime: Runtime, tmp_path: Path
) -> None:
    target = tmp_path / "mine"
    done = _swarm("init", "--template", "heuristic", str(target), data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr
    assert "harness.py" in done.stdout
    problem = load_package(target)
    assert is_heuristic(problem) and problem.entry == "priority"
    validation = validate_problem(runtime, problem)
    assert validation.ok, validation.failures
    assert validation.evaluations == 19  # the 18 of any package and a random function


async def test_pose_accepts_a_heuristic_package(runtime: Runtime) -> None:
    blocks = "".join(
        f'<file path="{path.relative_to(TEMPLATE).as_posix()}">\n{path.read_text()}</file>\n'
        for path in sorted(TEMPLATE.rglob("*")) if path.is_file()
    )
    script = Script(message(blocks, tokens=(5_000, 2_000)))
    config = LLMConfig("anthropic", "claude-sonnet-5-5", KEY, max_retries=2, timeout_s=5.0)
    async with AnthropicClient(config, httpx.MockTransport(script), sleep=no_sleep) as client:
        poser = Poser(client, BudgetMeter(config), runtime, PoseConfig(attempts=1))
        result = await poser.pose("find a priority function for online bin packing")
    assert result.ok, result.report()
    assert result.problem is not None and is_heuristic(result.problem)
    assert "heuristic package" in script.prompt(0) or b"harness.py" in script.requests[0].content
