"""Mutators: offline AST operators (default) and LLM-backed ones, behind one `Mutator` role."""

from node.mutators.base import MutationContext, MutationFailed, Mutator, Proposal, Usage
from node.mutators.llm import LLMMutator
from node.mutators.patch import PatchError, apply_patch, make_diff

__all__ = [
    "LLMMutator",
    "MutationContext",
    "MutationFailed",
    "Mutator",
    "PatchError",
    "Proposal",
    "Usage",
    "apply_patch",
    "make_diff",
]
