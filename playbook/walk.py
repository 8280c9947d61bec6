"""Where a strategy's settings are: one walk over its AST that names each tunable literal,
container and sum of terms by the assignment it sits in, and keeps off-limits places out.

The offline mutator's sites (node/mutators/sites.py) and the static affordance listing
(playbook/affordances.py) are both this walk with their own hooks, so a site the playbook names
in one problem is a site the mutator can act on.
"""

from __future__ import annotations

import ast
import math
import re

from playbook.source import SourceFile

Container = ast.List | ast.Tuple | ast.Set | ast.Dict
# The container an element sits in, with the container's own label.
Within = tuple[Container, str | None]

_SEED_NAME = re.compile(r"seed|random_state", re.IGNORECASE)
# Fields never walked: annotations, except-clause types, match patterns, assignment targets,
# and subscript slices (changing `x[0]` to `x[1]` mostly just breaks the code).
_SKIPPED_FIELDS = frozenset(
    {"annotation", "returns", "type", "pattern", "target", "targets", "slice", "type_comment"}
)


class StrategyWalk:
    """One pass over a module; subclasses override the `on_*` hooks.

    Off-limits: docstrings and bare strings, f-strings, the `__main__` block, seeds (keyword
    arguments, parameters and assignments named like `seed` / `random_state`), dunder
    assignments, subscript indices and slices, annotations, and `while True`. Lines pinned with
    `# swarm: fixed` are reported (`src.pinned`); the hooks decide what a pin rules out.
    """

    def __init__(self, src: SourceFile) -> None:
        self.src = src

    def run(self) -> None:
        for statement in self.src.tree.body:
            self.statement(statement)

    # Hooks: a numeric literal (`wrap`: a negative replacement needs parentheses), a bool, a
    # list/tuple/set/dict literal, and the operands of an `a + b - c` chain.
    def on_number(self, node: ast.expr, label: str | None, within: Within | None,
                  wrap: bool) -> None: ...

    def on_switch(self, node: ast.Constant, label: str | None) -> None: ...

    def on_container(self, node: Container, label: str | None) -> None: ...

    def on_terms(
        self, operands: list[ast.expr], operators: list[ast.operator], label: str | None
    ) -> None: ...

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
        if _is_main_guard(node) or (isinstance(node, ast.Expr) and is_string(node.value)):
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

    def expression(self, node: ast.expr, label: str | None, within: Within | None = None) -> None:
        if isinstance(getattr(node, "ctx", None), ast.Store | ast.Del):
            return
        if isinstance(node, ast.JoinedStr):
            return  # f-string parts are formatting, not settings
        if number_value(node) is not None:
            self.on_number(node, label, within, False)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                self.on_switch(node, label)
        elif isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
            self.on_container(node, label)
            for element, element_label in element_labels(self.src, node, label):
                self.expression(element, element_label, (node, label))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            operands, operators = chain_operands(self.src, node)
            if not any(is_string(operand) for operand in operands):  # text, not terms
                self.on_terms(operands, operators, label)
            for operand in operands:
                self.expression(operand, label)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if number_value(node.left) is None:
                self.expression(node.left, label)
            else:  # `2 ** x` must become `(-2) ** x`, not `-2 ** x`
                self.on_number(node.left, label, None, True)
            self.expression(node.right, label)
        elif isinstance(node, ast.Attribute) and number_value(node.value) is not None:
            self.on_number(node.value, label, None, True)
        elif isinstance(node, ast.Lambda):
            self.arguments(node.args, "lambda")
            self.expression(node.body, label)
        else:
            self.children(node, label)


def element_labels(
    src: SourceFile, node: Container, label: str | None
) -> list[tuple[ast.expr, str | None]]:
    """Each element (dict: each value) with its label, e.g. `WEIGHTS[3]`, `PARAMS['alpha']`."""
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            return [(value, label) for value in node.values]
        names = [f"[{src.quote(key)}]" for key in node.keys if key is not None]
        elements = node.values
    else:
        names = [f"[{index}]" for index in range(len(node.elts))]
        elements = node.elts
    return [
        (element, f"{label}{name}" if label else None)
        for element, name in zip(elements, names, strict=True)
    ]


def chain_operands(src: SourceFile, node: ast.BinOp) -> tuple[list[ast.expr], list[ast.operator]]:
    """`a + b - c` as operands [a, b, c] and operators [+, -] (the top node's whole chain)."""
    operands: list[ast.expr] = []
    operators: list[ast.operator] = []
    current = node
    while True:
        operands.append(current.right)
        operators.append(current.op)
        left = current.left
        # A parenthesised left operand `(a + b) + c` is one operand, a chain of its own.
        if (
            isinstance(left, ast.BinOp)
            and isinstance(left.op, ast.Add | ast.Sub)
            and src.span(left)[0] == src.span(current)[0]
        ):
            current = left
        else:
            operands.append(left)
            break
    operands.reverse()
    operators.reverse()
    return operands, operators


def number_value(node: ast.expr) -> int | float | None:
    """The value of a numeric literal (`3`, `0.5`, `-2`); None for bools and everything else."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if not isinstance(node, ast.Constant):
        return None
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return sign * value


def is_string(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


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
