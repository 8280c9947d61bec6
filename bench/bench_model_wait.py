"""A model's latency against the sandbox's wall budget (issue 13): skill_landing_copy's baseline
evaluated through a provider that answers like the stand-in after a fixed latency per call,
with the problem's wall_s lowered below the calls' total latency. Counted in wall_s (the old
behaviour, reproduced by serving the door without its model-wait clock) every evaluation times
out; not counted, it finishes, and its guest time is what it was with an instant model.

    .venv/bin/python bench/bench_model_wait.py [--latency 0.1] [--wall 1.0]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sandbox.host
import sandbox.model_door
from node.llm import ModelGateway, StandinProvider
from node.llm.providers import ModelReply
from node.model_evaluations import ModelEvaluations
from node.problem import baseline_files, load_package
from research_dag import Problem
from sandbox import Evaluator, Runtime, load_runtime

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "skill_landing_copy"


class SlowStandin(StandinProvider):
    """The stand-in, answering after `latency` seconds (waiting on an Event nobody sets)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self._never = threading.Event()

    def complete(self, system: str, user: str, max_tokens: int,
                 stopped: Callable[[], bool] = lambda: False) -> ModelReply:
        self._never.wait(self.latency)
        return super().complete(system, user, max_tokens, stopped)

    def judge(self, question: str, output: str,
              stopped: Callable[[], bool] = lambda: False) -> ModelReply:
        self._never.wait(self.latency)
        return super().judge(question, output, stopped)


@contextmanager
def _counted_in_wall_s() -> Iterator[None]:
    """The door served without the model-wait clock: the call's time is the guest's."""
    original = sandbox.model_door.serve_door

    def serve(*args: object, **_: object) -> int:
        return original(*args[:7])  # type: ignore[arg-type]

    setattr(sandbox.host, "serve_door", serve)  # noqa: B010 (a private name, patched)
    try:
        yield
    finally:
        setattr(sandbox.host, "serve_door", original)  # noqa: B010


def _evaluate(runtime: Runtime, problem: Problem, latency: float) -> tuple[str, float, int]:
    files = baseline_files(problem)
    with Evaluator(runtime, problem) as evaluator:
        run = ModelEvaluations(evaluator, problem, ModelGateway(SlowStandin(latency),
                                                                cache_entries=0))
        started = time.monotonic()
        done = run(files)
        return done.outcome.status, time.monotonic() - started, len(done.transcript.calls)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per model call")
    parser.add_argument("--wall", type=float, default=1.0, help="the problem's wall_s")
    args = parser.parse_args()
    runtime = load_runtime()
    package = load_package(EXAMPLE)
    problem = package.model_copy(
        update={"budget": package.budget.model_copy(update={"wall_s": args.wall})})
    status, seconds, calls = _evaluate(runtime, problem, 0.0)
    print(f"instant model:           {status:8} {seconds:6.2f} s wall, {calls} calls")
    status, seconds, calls = _evaluate(runtime, problem, args.latency)
    print(f"{args.latency} s per call, not counted in wall_s={args.wall}: {status:8} "
          f"{seconds:6.2f} s, {calls} calls")
    with _counted_in_wall_s():
        status, seconds, calls = _evaluate(runtime, problem, args.latency)
    print(f"{args.latency} s per call, counted in wall_s={args.wall} (before): {status:8} "
          f"{seconds:6.2f} s, {calls} calls")


if __name__ == "__main__":
    main()
