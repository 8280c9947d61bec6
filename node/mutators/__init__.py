"""Mutators: offline AST operators (default) and LLM-backed ones, behind one `Mutator` role."""

from node.llm import Usage
from node.mutators.base import MutationContext, MutationFailed, Mutator, Proposal, in_worker
from node.mutators.llm import LLMMutator
from node.mutators.memory import FAMILY_NAMES, MODEL_KINDS, family_of
from node.mutators.offline import OPERATOR_KINDS, OfflineMutator
from node.mutators.patch import PatchError, apply_patch, make_diff
from node.mutators.search import Search

__all__ = [
    "FAMILY_NAMES",
    "MODEL_KINDS",
    "OPERATOR_KINDS",
    "LLMMutator",
    "MutationContext",
    "MutationFailed",
    "Mutator",
    "OfflineMutator",
    "PatchError",
    "Proposal",
    "Search",
    "Usage",
    "apply_patch",
    "family_of",
    "in_worker",
    "make_diff",
]
