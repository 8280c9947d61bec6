"""The evaluations every simulated node shares: one evaluator per problem, memoised (evaluation
is deterministic, so a candidate need not run twice in one simulation); a problem that asks a
model is evaluated, and its claims verified, through the model gateway the caller passes in
(node/sim may not import node.llm: `swarm simulate` builds it, the stand-in by default)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from node.model_evaluations import Gateway, ModelEvaluations
from node.spot_retries import Unchecked
from node.trust import ModelCheck
from research_dag import Outcome, Problem, Transcript
from sandbox import Evaluated, Evaluator, Runtime

Key = tuple[str, tuple[tuple[str, str], ...]]


class SharedEvaluations:
    """What each simulated node's `evaluator_for` returns, counted once per distinct candidate
    (`runs`, `fuel`) whichever node asked first (the counts must not depend on timing)."""

    def __init__(self, runtime: Runtime, gateway: Gateway | None = None) -> None:
        self.runtime = runtime
        self.gateway = gateway
        self._evaluators: dict[str, Evaluator] = {}
        self._cache: dict[Key, Outcome | Evaluated] = {}
        self._lock = threading.Lock()
        self.runs = 0
        self.fuel = 0

    def evaluator_for(
        self, problem: Problem
    ) -> Callable[[Mapping[str, str]], Outcome | Evaluated]:
        if problem.id not in self._evaluators:
            self._evaluators[problem.id] = Evaluator(self.runtime, problem)
        evaluator = self._evaluators[problem.id]
        if problem.model is not None and self.gateway is not None:
            return SharedModelEvaluations(
                self, problem.id, ModelEvaluations(evaluator, problem, self.gateway))

        def evaluate(files: Mapping[str, str]) -> Outcome | Evaluated:
            return self.memoised(problem.id, files, evaluator.evaluate)

        return evaluate

    def memoised(
        self, problem_id: str, files: Mapping[str, str],
        run: Callable[[Mapping[str, str]], Outcome | Evaluated],
    ) -> Outcome | Evaluated:
        key = (problem_id, tuple(sorted(files.items())))
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        done = run(files)
        with self._lock:
            # Two nodes may evaluate the same candidate in the same round: counted once, and
            # both get the first one's (the same outcome; a transcript with the same calls).
            if key not in self._cache:
                self._cache[key] = done
                self.runs += 1
                self.fuel += (done.outcome if isinstance(done, Evaluated) else done).fuel
            return self._cache[key]

    def close(self) -> None:
        for evaluator in self._evaluators.values():
            evaluator.close()


@dataclass
class SharedModelEvaluations:
    """A model-backed problem's evaluation for a simulated node: memoised with its transcript
    (the stand-in answers a request one way, so the same candidate gets the same calls), and
    a peer's claim verified as `swarm join` verifies it (replay, then spot check; node.trust
    ModelVerifier), never from the memo."""

    shared: SharedEvaluations
    problem_id: str
    evaluations: ModelEvaluations

    def __call__(self, files: Mapping[str, str]) -> Outcome | Evaluated:
        return self.shared.memoised(self.problem_id, files, self.evaluations)

    def verify(
        self, strategy: Mapping[str, str], claimed: Outcome, transcript: Transcript, seed: str
    ) -> ModelCheck | Unchecked:
        return self.evaluations.verify(strategy, claimed, transcript, seed)
