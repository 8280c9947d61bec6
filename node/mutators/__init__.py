"""Mutators: offline AST operators (default) and LLM-backed ones, behind one `Mutator` role."""

from node.llm import Usage
from node.mutators.base import MutationContext, MutationFailed, Mutator, Proposal
from node.mutators.llm import LLMMutator
from node.mutators.offline import OPERATOR_KINDS, OfflineMutator
from node.mutators.patch import PatchError, apply_patch, make_diff

__all__ = [
    "OPERATOR_KINDS",
    "LLMMutator",
    "MutationContext",
    "MutationFailed",
    "Mutator",
    "OfflineMutator",
    "PatchError",
    "Proposal",
    "Usage",
    "apply_patch",
    "make_diff",
]
