"""The offline loop's speed on examples/search_ranking: milliseconds per proposal (the mutator
alone, site walk and affordance classification included) and rounds per second of the whole
loop (real sandbox evaluations, a real SQLite store), with empty knowledge and, when the tree
has the playbook priors, with a live pattern and an open hypothesis (ratio against empty).

    .venv/bin/python bench/bench_loop.py [--proposals 300] [--rounds 30] [--repeat 3]

Run it against an older checkout to compare (its node/ and playbook/ come from that tree):

    mkdir /tmp/before && git archive HEAD | tar -x -C /tmp/before
    cp bench/bench_loop.py /tmp/before/bench/ && .venv/bin/python /tmp/before/bench/bench_loop.py
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.loop import LoopConfig, ResearchLoop  # noqa: E402
from node.mutators import MutationContext, OfflineMutator  # noqa: E402
from node.problem import baseline_files, load_package  # noqa: E402
from node.store import RecordStore  # noqa: E402
from research_dag import Hypothesis, Pattern, Problem  # noqa: E402
from sandbox import Evaluator, load_runtime  # noqa: E402

EXAMPLE = ROOT / "examples" / "search_ranking"


def knowledge_for(problem: Problem) -> Any:
    """A live prune:weight_vector pattern learned elsewhere and an open hypothesis here, or
    None when this tree has no playbook priors (an older checkout)."""
    try:
        from playbook import Knowledge, strategy_affordances
    except ImportError:
        return None
    sites = [
        site.site
        for site in strategy_affordances(baseline_files(problem))
        if site.affordance == "weight_vector" and "prune" in site.operations
    ]
    pattern = Pattern(
        mutation_kind="prune:weight_vector", operation="prune", affordance="weight_vector",
        text="pruning a weak weight improves the score", supporting=["a" * 64] * 6,
        contradicting=["b" * 64] * 10, success_rate=6 / 16, status="live",
    )
    hypothesis = Hypothesis(
        pattern=pattern.id, problem=problem.id, mutation_kind="prune:weight_vector",
        operation="prune", affordance="weight_vector", text="prune a weak weight here",
        sites=sites[:8], expected_lift=0.2, tries=8,
    )
    return Knowledge(patterns=(pattern,), hypotheses=(hypothesis,))


def time_proposals(problem: Problem, count: int, knowledge: Any) -> float:
    """Milliseconds per offline proposal on the baseline strategy."""
    mutator = OfflineMutator()
    extra: dict[str, Any] = {}
    if knowledge is not None:
        from playbook import class_weights, strategy_affordances

        files = baseline_files(problem)
        weights, sources = class_weights(knowledge, strategy_affordances(files))
        extra = {"class_weights": weights, "class_patterns": sources}
    files = baseline_files(problem)
    start = time.perf_counter()
    for n in range(count):
        context = MutationContext(
            problem=problem, best_files=files, best_score=None, rng=random.Random(n), **extra
        )
        mutator.propose_now(context)
    return (time.perf_counter() - start) / count * 1000


async def time_loop(problem: Problem, rounds: int, knowledge: Any) -> float:
    """Rounds per second of the offline loop (the baseline's evaluation excluded)."""
    extra: dict[str, Any] = {} if knowledge is None else {"knowledge": lambda: knowledge}
    with (
        tempfile.TemporaryDirectory() as directory,
        Evaluator(load_runtime(), problem) as evaluator,
        RecordStore.open(Path(directory) / "r.sqlite") as store,
    ):
        loop = ResearchLoop(
            problem, evaluator.evaluate, OfflineMutator(), store,
            LoopConfig(iterations=rounds, seed=0, target_streak=10**6), **extra,
        )
        await loop.prepare()
        start = time.perf_counter()
        for _ in range(rounds):
            await loop.step()
        return rounds / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proposals", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    problem = load_package(EXAMPLE)
    knowledge = knowledge_for(problem)
    runs: list[tuple[str, Any]] = [("empty knowledge", None)]
    if knowledge is not None:
        runs.append(("with knowledge", knowledge))
    base_ms = base_rate = 0.0
    for label, known in runs:
        ms = min(time_proposals(problem, args.proposals, known) for _ in range(args.repeat))
        rate = max(trio.run(time_loop, problem, args.rounds, known) for _ in range(args.repeat))
        if known is None:
            base_ms, base_rate = ms, rate
        print(
            f"{label:16} {ms:7.2f} ms/proposal ({ms / base_ms:.2f}x)   "
            f"{rate:6.2f} rounds/s ({rate / base_rate:.2f}x)"
        )


if __name__ == "__main__":
    main()
