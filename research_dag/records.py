"""The shared record model: every value nodes exchange, frozen, bounded and content-addressed.
Here the problem, its experiments and their verifications with their parts; the base is
research_dag/record_base.py, the change vocabulary research_dag/vocabulary.py, the derived
records research_dag/derived.py."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal, Self, TypeAlias

from pydantic import Field, field_validator, model_validator

from research_dag.paths import MutablePath, PackagePath, check_path_set
from research_dag.record_base import (
    MAX_FILES,
    MAX_LIST,
    MAX_MUTABLE,
    MAX_NAME,
    MAX_PACKAGE_BYTES,
    MAX_SOURCE,
    MAX_STDERR_TAIL,
    MAX_U63,
    MAX_U64,
    MIN_I64,
    Frozen,
    RecordBase,
    RecordId,
    ShortText,
    Text,
    is_utf8,
)
from research_dag.vocabulary import Change

# Its own names, and those of the base research_dag/transcripts.py imports from here.
__all__ = [
    "EVALUATOR",
    "FUEL_MIN_GAIN",
    "MAX_APPLIED",
    "MAX_CHANGES",
    "MAX_NAME",
    "MAX_U63",
    "Budget",
    "Direction",
    "Experiment",
    "Frozen",
    "Metric",
    "ModelLimits",
    "Outcome",
    "Problem",
    "RecordBase",
    "RecordId",
    "ShortText",
    "SpotCheck",
    "Status",
    "Verification",
]

EVALUATOR = "evaluate.py"  # the package's fixed evaluator (docs/experiment-package.md)
FUEL_MIN_GAIN = 0.005  # 0.5 %
MAX_CHANGES = 8  # a structural proposal combines 2-3 changes; an LLM may list a few more
MAX_APPLIED = 16

Direction: TypeAlias = Literal["maximize", "minimize"]
Status: TypeAlias = Literal[
    "ok",  # the evaluator scored the strategy
    "crash",  # the strategy or evaluator raised / exited non-zero
    "out_of_fuel",  # the deterministic instruction budget ran out
    "timeout",  # cut short by the host: its wall clock, or a host fault (never verified)
    "out_of_memory",  # the memory limit was hit
    "invalid_output",  # output missing, unparseable, too large, or a non-finite score
    "invalid",  # the evaluator judged the output wrong (e.g. faster_code's checks failed)
]


class Metric(Frozen):
    name: ShortText
    direction: Direction
    target: float | None = None
    # "evaluator": the score the evaluator reports; "fuel": the strategy phase's measured fuel
    # (the evaluator then only judges validity).
    source: Literal["evaluator", "fuel"] = "evaluator"

    @field_validator("target")
    @classmethod
    def _finite_target(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("target must be a finite number")
        return value

    def better(self, candidate: float, incumbent: float | None) -> bool:
        """True when `candidate` strictly improves on `incumbent` in this metric's direction.

        A fuel metric needs a real gain (FUEL_MIN_GAIN): any edit, even to an unused
        setting, shifts fuel by a few instructions, and keeping such noise would lock the
        search onto pointless edits.
        """
        if incumbent is None:
            return True
        if self.source == "fuel":
            margin = abs(incumbent) * FUEL_MIN_GAIN
            if self.direction == "maximize":
                return candidate > incumbent + margin
            return candidate < incumbent - margin
        if self.direction == "maximize":
            return candidate > incumbent
        return candidate < incumbent

    def reached(self, score: float) -> bool:
        if self.target is None:
            return False
        if self.direction == "maximize":
            return score >= self.target
        return score <= self.target


class Budget(Frozen):
    """Per-evaluation limits. Fuel is per phase; wall time is a safety net, not a metric."""

    fuel: Annotated[int, Field(ge=10_000_000, le=1_000_000_000_000)] = 20_000_000_000
    memory_mb: Annotated[int, Field(ge=48, le=4096)] = 512
    wall_s: Annotated[float, Field(gt=0, le=3600)] = 60.0


class ModelLimits(Frozen):
    """Per-evaluation limits on the model calls of a package whose runner or evaluator asks a
    model (problem.toml `[model]`; docs/experiment-package.md#text-strategies)."""

    max_calls: Annotated[int, Field(ge=1, le=10_000)] = 64
    max_tokens: Annotated[int, Field(ge=1, le=10_000_000)] = 200_000  # in + out, per evaluation
    max_prompt_bytes: Annotated[int, Field(ge=1, le=1024 * 1024)] = 32 * 1024  # per request
    samples: Annotated[int, Field(ge=1, le=16)] = 1  # repeats per case, for the noise gate


class Outcome(Frozen):
    """What one evaluation produced. Deterministic fields only, except `status == "timeout"`."""

    status: Status
    score: float | None = None
    items: dict[ShortText, bool] = Field(default_factory=dict, max_length=MAX_LIST)
    strategy_fuel: Annotated[int, Field(ge=0, le=MAX_U63)] = 0
    evaluator_fuel: Annotated[int, Field(ge=0, le=MAX_U63)] = 0
    stderr_tail: Annotated[str, Field(max_length=MAX_STDERR_TAIL)] = ""
    details: dict[ShortText, float | int | str | bool] = Field(
        default_factory=dict, max_length=MAX_LIST
    )

    @field_validator("score")
    @classmethod
    def _finite_score(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("score must be a finite number")
        return value

    @field_validator("details")
    @classmethod
    def _bounded_details(
        cls, value: dict[str, float | int | str | bool]
    ) -> dict[str, float | int | str | bool]:
        # The one field whose values no annotation bounds: an evaluator's 2**70 or "\ud800"
        # made a valid Outcome that no encoder could write (OverflowError, UnicodeEncodeError
        # when its experiment's id was computed), so each value must be one msgpack carries.
        for key, item in value.items():
            if isinstance(item, str) and len(item) > MAX_NAME:
                raise ValueError(f"details[{key!r}] is longer than {MAX_NAME} characters")
            if isinstance(item, str) and not is_utf8(item):
                raise ValueError(f"details[{key!r}] is not valid Unicode (a lone surrogate)")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"details[{key!r}] is not finite")
            if type(item) is int and not MIN_I64 <= item <= MAX_U64:
                raise ValueError(f"details[{key!r}] does not fit in 64 bits")
        return value

    @property
    def fuel(self) -> int:
        return self.strategy_fuel + self.evaluator_fuel


class Problem(RecordBase):
    ADDED_FIELDS: ClassVar[frozenset[str]] = frozenset({"generator", "runner", "model"})

    kind: Literal["problem"] = "problem"
    name: ShortText
    statement: Text
    domains: list[ShortText] = Field(default_factory=list, max_length=32)
    metric: Metric
    checklist: list[ShortText] = Field(default_factory=list, max_length=64)
    budget: Budget = Field(default_factory=Budget)
    mutable: list[MutablePath] = Field(min_length=1, max_length=MAX_MUTABLE)
    entry: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)] = "solve"
    seed: Annotated[int, Field(ge=-MAX_U63, le=MAX_U63)] = 0
    # A fixed top-level .py file whose generate(seed, public_dir) draws each candidate's
    # inputs (docs/experiment-package.md#fresh-inputs); None: the inputs are fixed files.
    generator: MutablePath | None = None
    # A text strategy (docs/experiment-package.md#text-strategies): a fixed top-level .py file
    # whose entry phase 1 runs instead of the first mutable file's, which may then be any text.
    runner: MutablePath | None = None
    # Limits on model calls (swarm_model); None: the package asks no model.
    model: ModelLimits | None = None
    # Every file of the package by relative posix path (strategy, evaluator, data).
    files: dict[PackagePath, bytes] = Field(max_length=MAX_FILES)

    @field_validator("files")
    @classmethod
    def _bounded_files(cls, value: dict[str, bytes]) -> dict[str, bytes]:
        total = sum(len(content) for content in value.values())
        if total > MAX_PACKAGE_BYTES:
            raise ValueError(f"package files total {total} bytes; the limit is {MAX_PACKAGE_BYTES}")
        check_path_set(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """What a loop, a replay and staging take for granted (issue 8, finding 2)."""
        if len(set(self.mutable)) != len(self.mutable):
            raise ValueError("mutable names a file twice")
        for name in self.mutable:
            content = self.files.get(name)
            if content is None:
                raise ValueError(f"mutable file {name!r} is not one of the package files")
            if name == EVALUATOR:
                raise ValueError(f"the evaluator {EVALUATOR} cannot be mutable")
            try:
                content.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"mutable file {name!r} is not UTF-8 text") from None
        generator = self.generator
        if generator is not None and (
            generator not in self.files
            or generator in self.mutable
            or generator == EVALUATOR
            or not generator.endswith(".py")
        ):
            raise ValueError(
                f"the generator {generator!r} must be a .py file of the package, neither mutable"
                " nor the evaluator"
            )
        runner = self.runner
        if runner is not None and (
            runner not in self.files
            or runner in self.mutable
            or runner in (EVALUATOR, generator)
            or not runner.endswith(".py")
        ):
            raise ValueError(
                f"the runner {runner!r} must be a .py file of the package, neither mutable,"
                " the evaluator nor the generator"
            )
        if runner is None and not self.mutable[0].endswith(".py"):
            raise ValueError(f"the first mutable file {self.mutable[0]!r} (the entry module)"
                             " must be a .py file")
        return self


class Experiment(RecordBase):
    """One evaluation of one candidate strategy. The baseline has `parent=None`."""

    ADDED_FIELDS: ClassVar[frozenset[str]] = frozenset({"changes", "applied", "transcript"})

    kind: Literal["experiment"] = "experiment"
    problem: RecordId
    parent: RecordId | None = None
    # The full mutable files of the candidate, so any peer can replay it.
    # Keys are checked against the problem's `mutable` at intake (node/swarm.py): that takes
    # two records.
    strategy: dict[MutablePath, Annotated[str, Field(max_length=MAX_SOURCE)]] = Field(
        min_length=1, max_length=MAX_MUTABLE
    )
    diff: Annotated[str, Field(max_length=MAX_SOURCE)] = ""
    mutation_kind: ShortText = "baseline"
    description: Text = ""
    hypothesis: Text = ""
    hypothesis_id: RecordId | None = None
    mutator: ShortText = "offline"
    outcome: Outcome
    # The change in the shared vocabulary, one entry per coordinated edit (None: not described,
    # as in records made before the vocabulary existed).
    changes: list[Change] | None = Field(default=None, max_length=MAX_CHANGES)
    # The patterns the proposal applied as priors, so its outcome is attributed to them.
    applied: list[RecordId] | None = Field(default=None, max_length=MAX_APPLIED)
    # The Transcript of its model calls (research_dag/transcripts.py), for a problem whose
    # evaluation asks a model; None otherwise.
    transcript: RecordId | None = None

    def change_classes(self) -> tuple[str, ...]:
        """The distinct classes of its changes, sorted; () when it does not describe them."""
        return tuple(sorted({change.change_class for change in self.changes or ()}))

    @field_validator("strategy")
    @classmethod
    def _distinct_files(cls, value: dict[str, str]) -> dict[str, str]:
        check_path_set(value)
        return value


class SpotCheck(Frozen):
    """How a verifier re-asked a sample of a transcript's calls with its own model: how many,
    in how many the recorded response passed more of the checklist than the fresh one
    (`recorded_better`) or fewer (`fresh_better`), and the model it asked. The Verification's
    outcome is then the evaluation with fresh responses in place of the sampled ones."""

    sampled: Annotated[int, Field(ge=0, le=MAX_LIST)]
    recorded_better: Annotated[int, Field(ge=0, le=MAX_LIST)]
    fresh_better: Annotated[int, Field(ge=0, le=MAX_LIST)]
    model: ShortText
    provider: ShortText


class Verification(RecordBase):
    ADDED_FIELDS: ClassVar[frozenset[str]] = frozenset({"spot_check"})

    kind: Literal["verification"] = "verification"
    experiment: RecordId
    outcome: Outcome
    match: bool
    # Set when the verification spot-checked a model-backed claim (docs/protocol.md): then
    # `match` is False when the replay matched but the spot check disputed the responses.
    spot_check: SpotCheck | None = None
