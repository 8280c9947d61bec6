"""The records the playbook curator derives (`Pattern`, `Hypothesis`, `Verdict`): unsigned,
authored by DERIVED_AUTHOR, each a function of the records it cites."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal, Self, TypeAlias

from pydantic import Field, field_validator, model_validator

from research_dag.record_base import MAX_LIST, RecordBase, RecordId, ShortText, Text
from research_dag.vocabulary import Affordance, Operation, Qualifier

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
