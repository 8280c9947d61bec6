"""The problem-independent vocabulary of changes (operation, affordance, qualifier) and `Change`,
one change of an experiment described in it."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from pydantic import SerializerFunctionWrapHandler, model_serializer

from research_dag.record_base import Frozen, ShortText

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
