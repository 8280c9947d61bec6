"""Where the offline operators may act in a strategy: the walk and what it keeps off-limits."""

from __future__ import annotations

import ast
import re

from node.mutators.operators import (
    Site,
    chain_operands,
    container_sites,
    element_labels,
    number_site,
    number_value,
    term_sites,
    toggle_site,
)
from node.mutators.source import SourceFile, parse

_SEED_NAME = re.compile(r"seed|random_state", re.IGNORECASE)
# Fields never mutated: annotations, except-clause types, match patterns, assignment targets,
# and subscript slices (changing `x[0]` to `x[1]` mostly just breaks the code).
_SKIPPED_FIELDS = frozenset(
    {"annotation", "returns", "type", "pattern", "target", "targets", "slice", "type_comment"}
)


def collect_sites(path: str, text: str) -> list[Site]:
    """Every site of every operator in one file, in source order; [] if it does not parse."""
    tree = parse(text)
    if tree is None:
        return []
    walk = _Walk(SourceFile(path, text, tree))
    for statement in tree.body:
        walk.statement(statement)
    return walk.sites


class _Walk:
    """One pass over a module that records sites and carries the enclosing assignment's label.

    Off-limits: docstrings and bare strings, f-strings, the `__main__` block, seeds (keyword
    arguments, parameters and assignments named like `seed` / `random_state`), dunder
    assignments, subscript indices and slices, annotations, `while True`, and pinned lines.
    """

    def __init__(self, src: SourceFile) -> None:
        self.src = src
        self.sites: list[Site] = []

    def add(self, *sites: Site | None) -> None:
        self.sites.extend(site for site in sites if site is not None)

    def visit(self, node: ast.AST, label: str | None) -> None:
        if isinstance(node, ast.stmt):
            self.statement(node)
        elif isinstance(node, ast.expr):
            self.expression(node, label)
        elif isinstance(node, ast.keyword):
            if not (node.arg and _SEED_NAME.search(node.arg)):
                self.expression(node.value, node.arg or label)
        else:
            self.children(node, label)

    def children(self, node: ast.AST, label: str | None) -> None:
        for name, value in ast.iter_fields(node):
            if name in _SKIPPED_FIELDS:
                continue
            if isinstance(node, ast.While) and name == "test" and _is_bool(value):
                continue  # `while True:` is control flow, not a setting
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    self.visit(child, label)

    def statement(self, node: ast.stmt) -> None:
        if _is_main_guard(node) or (isinstance(node, ast.Expr) and _is_string(node.value)):
            return
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and not any(_pinned_name(t) for t in targets):
                self.assigned(targets[0], node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                self.expression(decorator, None)
            self.arguments(node.args, node.name)
            for child in node.body:
                self.statement(child)
        else:
            self.children(node, None)

    def assigned(self, target: ast.expr, value: ast.expr) -> None:
        if not isinstance(target, ast.Tuple | ast.List):
            self.expression(value, self.label(target))
        elif isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts):
            # `a, b = 0.1, 0.2` unpacks: change values one by one, never the tuple's shape.
            for name, element in zip(target.elts, value.elts, strict=True):
                self.expression(element, self.label(name))
        else:
            self.expression(value, None)

    def arguments(self, args: ast.arguments, owner: str) -> None:
        positional = [*args.posonlyargs, *args.args]
        # Defaults belong to the last positional parameters; kw_defaults hold None for "none".
        with_defaults = positional[len(positional) - len(args.defaults) :]
        pairs = list(zip(with_defaults, args.defaults, strict=True))
        keyword = zip(args.kwonlyargs, args.kw_defaults, strict=True)
        pairs += [(arg, default) for arg, default in keyword if default is not None]
        for arg, default in pairs:
            if not _SEED_NAME.search(arg.arg):
                self.expression(default, f"{owner}({arg.arg})")

    def label(self, target: ast.expr) -> str | None:
        if isinstance(target, ast.Name):
            return target.id
        if isinstance(target, ast.Attribute | ast.Subscript):
            return self.src.quote(target)
        return None

    def expression(self, node: ast.expr, label: str | None) -> None:
        if isinstance(getattr(node, "ctx", None), ast.Store | ast.Del):
            return
        if isinstance(node, ast.JoinedStr):
            return  # f-string parts are formatting, not settings
        if number_value(node) is not None:
            self.add(number_site(self.src, node, label))
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                self.add(toggle_site(self.src, node, label))
        elif isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
            self.add(*container_sites(self.src, node, label))
            for element, element_label in element_labels(self.src, node, label):
                self.expression(element, element_label)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            operands, operators = chain_operands(self.src, node)
            if not any(_is_string(operand) for operand in operands):  # text, not terms
                self.add(*term_sites(self.src, operands, operators, label))
            for operand in operands:
                self.expression(operand, label)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if number_value(node.left) is None:
                self.expression(node.left, label)
            else:  # `2 ** x` must become `(-2) ** x`, not `-2 ** x`
                self.add(number_site(self.src, node.left, label, wrap=True))
            self.expression(node.right, label)
        elif isinstance(node, ast.Attribute) and number_value(node.value) is not None:
            self.add(number_site(self.src, node.value, label, wrap=True))
        elif isinstance(node, ast.Lambda):
            self.arguments(node.args, "lambda")
            self.expression(node.body, label)
        else:
            self.children(node, label)


def _is_main_guard(node: ast.stmt) -> bool:
    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)):
        return False
    sides = [node.test.left, *node.test.comparators]
    names = {side.id for side in sides if isinstance(side, ast.Name)}
    values = {side.value for side in sides if isinstance(side, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"}


def _pinned_name(target: ast.expr) -> bool:
    """Seeds and dunders (`__all__`) are not research knobs."""
    if isinstance(target, ast.Name):
        name = target.id
    elif isinstance(target, ast.Attribute):
        name = target.attr
    else:
        return False
    return bool(_SEED_NAME.search(name)) or (name.startswith("__") and name.endswith("__"))


def _is_bool(node: object) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, bool)


def _is_string(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )
