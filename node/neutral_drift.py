"""Neutral drift's structure rule: an equal-score attempt may become the loop's parent only when
it changed numbers, not code (issue 14, rough edge 4). Measured on bench/packages/plateau_binpack*:
drifting through any equal-score change walked the strategy into neutral junk (a dropped term,
a changed index) that later changes could not build on."""

from __future__ import annotations

import io
import token
import tokenize
from collections.abc import Mapping


def same_structure(before: Mapping[str, str], after: Mapping[str, str]) -> bool:
    """Do the two strategies differ in numeric literals (and their signs) only?"""
    if set(before) != set(after):
        return False
    for name, source in before.items():
        skeleton = _skeleton(source)
        if skeleton is None or skeleton != _skeleton(after[name]):
            return False
    return True


def _skeleton(source: str) -> tuple[str, ...] | None:
    """The source's tokens with every number (and a minus sign before it) left out; None when
    it does not tokenize (never the same structure as anything)."""
    kept: list[str] = []
    try:
        for item in tokenize.generate_tokens(io.StringIO(source).readline):
            if item.type == token.NUMBER:
                if kept and kept[-1] == "-":
                    kept.pop()
                kept.append("#")
            elif item.type not in (token.COMMENT, token.NL):
                kept.append(item.string)
    except (tokenize.TokenError, SyntaxError):  # IndentationError is a SyntaxError
        return None
    return tuple(kept)
