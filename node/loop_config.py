"""What a research loop is configured with (`LoopConfig`), the callables it is given (`Evaluate`,
`Seal`) and what it reports: each attempt's `Step`, the run's `LoopSummary`, why it stopped."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from node.mutators import FAMILY_NAMES, Usage
from research_dag import Experiment, Outcome, Transcript
from sandbox import Evaluated

StopReason = Literal[
    "target_reached", "iterations", "fuel_budget", "model_budget", "mutator_exhausted",
    "interrupted",
]
# A model-backed problem's evaluation also returns the transcript of its model calls.
Evaluate = Callable[[Mapping[str, str]], Outcome | Evaluated]
Sealed = TypeVar("Sealed", Experiment, Transcript)


class Seal(Protocol):
    """Signs a new record of ours before it is stored or shared."""

    def __call__(self, record: Sealed, /) -> Sealed: ...


@dataclass(frozen=True)
class LoopConfig:
    iterations: int = 50
    fuel_budget: int | None = None  # total fuel (both phases) across this run's evaluations
    plateau: int = 8  # tries without a finding before asking for a structural change
    target_streak: int = 3  # stop once the best has met the target this many evaluations
    recent: int = 8  # attempts shown to the mutator
    max_mutator_failures: int = 10  # consecutive failed proposals before giving up
    seed: int = 0
    author: str = "local"
    # While the Knowledge holds open hypotheses for this problem, this share of proposals is a
    # targeted one (the hypothesis's planned change), each hypothesis at most its `tries` times
    # from this node.
    hypothesis_share: float = 0.25
    # Memory stays bounded whatever the uptime (docs/storage.md): the newest `window` attempts
    # (kind priors, the outcome memo, ids already offered) and `history` changelog steps.
    window: int = 1000
    history: int = 10_000
    # The offline mutator's operator families a bandit chooses among (node/mutators/search.py;
    # () switches the search off: the operators drawn as before, no crash learning), and how
    # many knobs a model-based proposal sets.
    families: tuple[str, ...] = FAMILY_NAMES
    retune: int = 1
    stop_at_target: bool = True  # False (--no-stop): spend the whole budget past the target
    # A free proposal (no tokens or money spent on it) that repeats a candidate already tried
    # is drawn again, at most this many times; one still repeated is answered from the cache.
    redraws: int = 8
    # Neutral drift: an attempt scoring exactly the best's score that changed only numbers (a
    # different candidate, node/neutral_drift.py) may become the parent, for at most this share
    # of the attempts (0: only strict improvements).
    drift: float = 0.0


@dataclass(frozen=True)
class Step:
    """One attempt as the changelog shows it."""

    iteration: int
    experiment_id: str
    status: str  # keep / drift / discard / crash (or the outcome status for other failures)
    score: float | None
    best_score: float | None
    mutation_kind: str
    description: str
    fuel: int
    gate: str = ""  # the noise gate's interval and test, for a package that asks a model
    family: str = ""  # the operator family it came from ("" when none was chosen)
    repeat: bool = False  # a candidate tried before: its outcome came from the cache


@dataclass
class LoopSummary:
    problem_id: str
    problem_name: str
    direction: str
    target: float | None
    baseline_score: float | None
    best_score: float | None
    best_experiment: str | None
    iterations: int = 0
    kept: int = 0
    mutator_failures: int = 0
    fuel_spent: int = 0  # of every attempt, repeats answered from the cache included
    evaluations: int = 0  # attempts evaluated in the sandbox (distinct candidates)
    evaluation_fuel: int = 0  # the fuel of those
    repeats: int = 0  # attempts answered from the cache (a candidate tried before)
    redrawn: int = 0  # proposals drawn again because they repeated a tried candidate
    drifts: int = 0  # equal-score attempts that became the parent (LoopConfig.drift)
    usage: Usage = field(default_factory=Usage)
    stop_reason: StopReason = "iterations"
    history: list[Step] = field(default_factory=list)


def step_status(outcome: Outcome, kept: bool) -> str:
    if outcome.status == "ok":
        return "keep" if kept else "discard"
    return "crash" if outcome.status == "crash" else outcome.status

