"""The shared record model: every value nodes exchange, frozen, bounded and content-addressed."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from research_dag.canonical import (
    canonical_encode,
)
from research_dag.paths import MutablePath, PackagePath, check_path_set

# Bounds keep a hostile peer or guest from inflating memory with one record.
MAX_TEXT = 4_000
MAX_NAME = 200
MAX_ID = 64
MAX_AUTHOR = 128
MAX_SIGNATURE = 512
MAX_SOURCE = 256_000
# Under the 4 MiB sync response limit, so any problem can travel by sync (docs/protocol.md).
MAX_PACKAGE_BYTES = 3 * 1024 * 1024
MAX_LIST = 256
MAX_STDERR_TAIL = 4_000
MAX_MUTABLE = 16
MAX_FILES = 4096
# More msgpack objects than any valid record holds (a Problem of MAX_FILES files is ~8,500:
# a key and a value per file, plus its lists), so the nesting scan stops there instead of
# walking millions of tiny objects a hostile record packs into 4 MiB. Raise it with the bounds.
MAX_RECORD_OBJECTS = 4 * MAX_FILES + 4 * MAX_LIST
EVALUATOR = "evaluate.py"  # the package's fixed evaluator (docs/experiment-package.md)
FUEL_MIN_GAIN = 0.005  # 0.5 %
MAX_U63 = 2**63 - 1  # integers stay within msgpack's 64-bit forms

RecordId: TypeAlias = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# The author of records the playbook curator derives (Pattern, Hypothesis, Verdict): they are a
# function of the records they cite, unsigned, and every node recomputes them rather than
# trusting them (docs/protocol.md, "Derived records"; ARCHITECTURE.md section 7).
DERIVED_AUTHOR = "derived"
MAX_CHANGES = 8  # a structural proposal combines 2-3 changes; an LLM may list a few more
MAX_APPLIED = 16
ShortText: TypeAlias = Annotated[str, Field(max_length=MAX_NAME)]
Text: TypeAlias = Annotated[str, Field(max_length=MAX_TEXT)]

Direction: TypeAlias = Literal["maximize", "minimize"]
Status: TypeAlias = Literal[
    "ok",  # the evaluator scored the strategy
    "crash",  # the strategy or evaluator raised / exited non-zero
    "out_of_fuel",  # the deterministic instruction budget ran out
    "timeout",  # the wall-clock safety net fired (not deterministic: never verified)
    "out_of_memory",  # the memory limit was hit
    "invalid_output",  # output missing, unparseable, too large, or a non-finite score
    "invalid",  # the evaluator judged the output wrong (e.g. faster_code's checks failed)
]


class Frozen(BaseModel):
    """Base of every record part: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


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


# The problem-independent vocabulary of changes (ARCHITECTURE.md section 7): an operation on an
# affordance of the strategy, at a site. The words are part of the record format: add, never
# rename. "other" takes free text in `Change.note`.
Operation: TypeAlias = Literal[
    "prune",  # remove or zero an element, a feature, a term
    "perturb",  # nudge a value
    "scale",  # multiply a group of values by one factor
    "toggle",  # flip a switch
    "swap",  # exchange two elements
    "reorder",  # another order of a sequence
    "insert",  # add an element, a step, a section
    "replace",  # put something else in a place
    "restructure",  # change the shape of the code or text
    "other",
]
OPERATIONS: tuple[str, ...] = (
    "prune", "perturb", "scale", "toggle", "swap", "reorder", "insert", "replace", "restructure",
    "other",
)
Affordance: TypeAlias = Literal[
    "weight_vector",  # numbers combined by position: weights, coefficients
    "feature_set",  # which inputs, factors or keywords are used
    "switch",  # a boolean option
    "learning_rate",  # a step size
    "threshold",  # a cut-off a decision compares against
    "loop_bound",  # epochs, iterations, steps, a search depth
    "capacity",  # a model's size: hidden units, layers, trees
    "regularization",  # a penalty, a decay, a dropout, a smoothing constant
    "term",  # one term of an expression
    "sequence",  # an ordered list whose order matters
    "constant",  # any other tuned number
    "text_section",  # a section of a prompt, a skill or a copy text
    "structure",  # the code's or text's shape as a whole
    "other",
]
AFFORDANCES: tuple[str, ...] = (
    "weight_vector", "feature_set", "switch", "learning_rate", "threshold", "loop_bound",
    "capacity", "regularization", "term", "sequence", "constant", "text_section", "structure",
    "other",
)
# Below the class, a problem-independent word for which change of the class it was (the offline
# operators compute it exactly; docs/playbook.md, "Qualifiers"): a pruned or zeroed element's
# rank by |value| among its container's numbers; a perturbed number's move relative to zero; a
# switch turned on or off; a rescale up or down. Part of the record format: add, never rename.
Qualifier: TypeAlias = Literal[
    "weakest", "middle", "strongest", "tied", "zero",  # prune: the element's |value| rank
    "toward_zero", "away_from_zero", "sign_flip", "from_zero",  # perturb: the move
    "on", "off",  # toggle: the new setting
    "up", "down",  # scale: the factor's side of 1
]
QUALIFIERS: tuple[str, ...] = (
    "weakest", "middle", "strongest", "tied", "zero", "toward_zero", "away_from_zero",
    "sign_flip", "from_zero", "on", "off", "up", "down",
)


class Change(Frozen):
    """One change of an experiment in the shared vocabulary: `operation` on `affordance` at
    `site` (e.g. prune / weight_vector / "strategy.py:WEIGHTS[3]")."""

    operation: Operation
    affordance: Affordance
    site: ShortText = ""
    note: ShortText = ""  # free text, for "other" above all
    # Added field: left out of the encoding while None (records made before keep their bytes).
    qualifier: Qualifier | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        values: dict[str, Any] = handler(self)
        if values.get("qualifier") is None:
            values.pop("qualifier", None)
        return values

    @property
    def change_class(self) -> str:
        """The class a pattern generalises over: operation and affordance, without the site."""
        return f"{self.operation}:{self.affordance}"

    @property
    def change_cell(self) -> str | None:
        """The class with its qualifier ("prune:weight_vector/weakest"); None without one."""
        return None if self.qualifier is None else f"{self.change_class}/{self.qualifier}"


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
        for key, item in value.items():
            if isinstance(item, str) and len(item) > MAX_NAME:
                raise ValueError(f"details[{key!r}] is longer than {MAX_NAME} characters")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"details[{key!r}] is not finite")
        return value

    @property
    def fuel(self) -> int:
        return self.strategy_fuel + self.evaluator_fuel


class RecordBase(Frozen):
    """Fields every record has. `signature` is excluded from the canonical bytes it signs."""

    author: Annotated[str, Field(max_length=MAX_AUTHOR)] = "local"
    created_ms: Annotated[int, Field(ge=0, le=MAX_U63)] = 0
    signature: Annotated[bytes, Field(max_length=MAX_SIGNATURE)] = b""

    # Fields added after wire version 1 was published: left out of the encoding while they
    # hold None, so every record made before they existed keeps its bytes, id and signature
    # (docs/protocol.md, section 4, "Added fields").
    ADDED_FIELDS: ClassVar[frozenset[str]] = frozenset()

    def plain(self, *, signed: bool = True) -> dict[str, Any]:
        """The record as the plain values its encoding holds (without the signature unless
        `signed`)."""
        exclude = {name for name in self.ADDED_FIELDS if getattr(self, name) is None}
        if not signed:
            exclude.add("signature")
        return self.model_dump(mode="python", exclude=exclude)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with `update`, a new record whose id and encoding are computed afresh (never
        the cached ones of the original)."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy.__dict__.pop("_id_cache", None)
            copy.__dict__.pop("_encoded_cache", None)
        return copy

    def canonical_bytes(self) -> bytes:
        """The bytes the id and signature cover: msgpack, sorted keys, no signature."""
        return canonical_encode(self.plain(signed=False))

    @property
    def id(self) -> str:
        # Cached per instance: records are frozen, so the id never changes.
        cached = self.__dict__.get("_id_cache")
        if cached is None:
            cached = hashlib.sha256(self.canonical_bytes()).hexdigest()
            object.__setattr__(self, "_id_cache", cached)
        return str(cached)

    def short_id(self) -> str:
        return self.id[:10]


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


PatternStatus: TypeAlias = Literal["candidate", "live", "retired"]


class Pattern(RecordBase):
    """What a class of change does, distilled from replayed experiments (playbook/).

    Derived: author DERIVED_AUTHOR, unsigned, created_ms the newest cited record's, every
    field a function of the cited records, so nodes holding the same evidence make the same
    record (same id). A node uses only patterns it derives itself (docs/protocol.md).
    Records made before the added fields existed keep `mutation_kind`, `text` and `retired`.
    """

    ADDED_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"operation", "affordance", "problems", "control", "status", "supersedes", "refuted_if",
         "qualifier"}
    )

    kind: Literal["pattern"] = "pattern"
    mutation_kind: ShortText  # the change class, "operation:affordance"
    text: Text  # the statement: which change, on which affordance, does what
    supporting: list[RecordId] = Field(default_factory=list, max_length=MAX_LIST)
    contradicting: list[RecordId] = Field(default_factory=list, max_length=MAX_LIST)
    success_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    mean_delta: float = 0.0
    domains: list[ShortText] = Field(default_factory=list, max_length=32)
    retired: bool = False
    operation: Operation | None = None
    affordance: Affordance | None = None
    # The scope: the problems whose experiments are cited.
    problems: list[RecordId] | None = Field(default=None, max_length=32)
    # Attempts of other classes on the same problems, the base rate the lift is measured over.
    control: list[RecordId] | None = Field(default=None, max_length=MAX_LIST)
    status: PatternStatus | None = None
    supersedes: RecordId | None = None
    refuted_if: Text | None = None  # what observation would refute the statement
    # A pattern of one cell below the class: mutation_kind is then "operation:affordance/q".
    qualifier: Qualifier | None = None

    @field_validator("mean_delta")
    @classmethod
    def _finite_delta(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("mean_delta must be finite")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.status is not None and self.retired != (self.status == "retired"):
            raise ValueError("retired must say what status says")
        _check_class(self.operation, self.affordance, self.mutation_kind, self.qualifier)
        return self


class Hypothesis(RecordBase):
    """A live pattern carried to another problem, written before it is tested: the planned
    change (its sites in the target), the prediction and the test plan. Derived, like Pattern."""

    ADDED_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"operation", "affordance", "sites", "expected_lift", "tries", "qualifier"}
    )

    kind: Literal["hypothesis"] = "hypothesis"
    pattern: RecordId
    problem: RecordId
    mutation_kind: ShortText
    text: Text
    operation: Operation | None = None
    affordance: Affordance | None = None
    sites: list[ShortText] | None = Field(default=None, max_length=MAX_LIST)
    # Predicted: the change's success rate on the target exceeds the target's base rate by
    # this much (absolute, 0..1).
    expected_lift: Annotated[float, Field(ge=-1.0, le=1.0)] | None = None
    tries: Annotated[int, Field(ge=1, le=MAX_LIST)] | None = None  # tests that decide it
    qualifier: Qualifier | None = None  # the planned change's cell below its class

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_class(self.operation, self.affordance, self.mutation_kind, self.qualifier)
        return self


def _check_class(operation: str | None, affordance: str | None, mutation_kind: str,
                 qualifier: str | None = None) -> None:
    if (operation is None) != (affordance is None):
        raise ValueError("operation and affordance come together")
    if qualifier is not None and operation is None:
        raise ValueError("a qualifier needs its operation and affordance")
    cell = f"{operation}:{affordance}" + ("" if qualifier is None else f"/{qualifier}")
    if operation is not None and mutation_kind != cell:
        raise ValueError("mutation_kind must be operation:affordance[/qualifier]")


class Verdict(RecordBase):
    """A hypothesis decided by its tests against the target's base rate. Derived."""

    kind: Literal["verdict"] = "verdict"
    hypothesis: RecordId
    result: Literal["confirmed", "refuted"]
    tests: list[RecordId] = Field(min_length=1, max_length=MAX_LIST)
    control: list[RecordId] = Field(default_factory=list, max_length=MAX_LIST)
    text: Text = ""
