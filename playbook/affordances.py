"""What a strategy offers to change: its affordance sites (weight vectors, feature sets,
switches, learning rates, thresholds, loop bounds...), found by static analysis and named in the
shared vocabulary (research_dag OPERATIONS / AFFORDANCES), the same way on every problem.

The naming rules live here so the offline mutator (node/mutators) labels its changes with the
words a hypothesis uses to name places in a problem it has never touched.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from playbook.source import SourceFile, parse
from playbook.walk import Container, StrategyWalk, Within, element_labels, number_value
from research_dag import MAX_NAME, Affordance, Operation, Qualifier

# Name rules, first match wins, tried on the innermost part of a label first
# (`PARAMS['lr']`: `lr`, then `PARAMS`). Each rule is a set of words or of word pairs.
_RULES: tuple[tuple[Affordance, frozenset[str], frozenset[tuple[str, str]]], ...] = (
    ("learning_rate", frozenset({"lr", "eta"}),
     frozenset({("learning", "rate"), ("step", "size")})),
    ("regularization", frozenset({
        "l1", "l2", "decay", "dropout", "penalty", "reg", "regularization", "regularisation",
        "lambda", "smoothing", "shrinkage"}), frozenset()),
    ("threshold", frozenset({"threshold", "thresholds", "thresh", "cutoff", "cutoffs"}),
     frozenset({("cut", "off")})),
    ("loop_bound", frozenset({
        "epochs", "epoch", "steps", "iters", "iter", "iterations", "iteration", "rounds",
        "passes", "depth", "restarts", "generations", "trials", "sweeps"}), frozenset()),
    ("capacity", frozenset({
        "hidden", "layers", "layer", "units", "width", "neurons", "trees", "estimators",
        "heads", "channels", "dim", "dims", "capacity"}), frozenset()),
)
# A container named like this holds weights whatever else its name says.
_WEIGHT_WORDS = frozenset({"weights", "weight", "coef", "coefs", "coefficients", "betas"})
# A list of strings named like this is a sequence (order matters), else a feature set.
_ORDER_WORDS = frozenset({
    "order", "sequence", "sections", "stages", "pipeline", "priority", "priorities", "schedule",
    "steps", "rules", "chain", "ranking"})
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*(?![a-z])|[0-9]+")
TEXT_OPERATIONS: tuple[Operation, ...] = ("replace", "insert", "prune", "reorder")
MAX_SITES = 4096  # a hostile strategy of many literals still gives a bounded listing
# The qualifiers a perturbation or a rescale can draw (research_dag.Qualifier): a number that is
# not zero can move either way or change sign; zero only away from itself.
_MOVES: tuple[Qualifier, ...] = ("toward_zero", "away_from_zero", "sign_flip")
_SIDES: tuple[Qualifier, ...] = ("up", "down")


@dataclass(frozen=True)
class AffordanceSite:
    """One place a strategy can be changed: `operations` on `affordance` at `site`
    (e.g. "strategy.py:WEIGHTS['bm25']", the path and the setting's label)."""

    path: str
    affordance: Affordance
    site: str
    operations: tuple[Operation, ...]
    # The cells below the classes the site can make, "operation:affordance/qualifier".
    cells: tuple[str, ...] = ()

    @property
    def change_classes(self) -> tuple[str, ...]:
        return tuple(f"{operation}:{self.affordance}" for operation in self.operations)


def strategy_affordances(files: Mapping[str, str]) -> list[AffordanceSite]:
    """Every affordance site of the mutable files, by path then source order; deterministic
    and problem-independent. A .py file that does not parse has none; any other file has one
    `text_section` site per heading or paragraph block."""
    found: dict[tuple[str, Affordance, str], list[Operation]] = {}
    cells: dict[tuple[str, Affordance, str], list[str]] = {}
    for path in sorted(files):
        if path.endswith(".py"):
            tree = parse(files[path])
            if tree is not None:
                _Listing(SourceFile(path, files[path], tree), found, cells).run()
        else:
            section: Affordance = "text_section"
            for name in text_sections(files[path]):
                found.setdefault((path, section, site_label(path, name, 0)), [*TEXT_OPERATIONS])
        if len(found) >= MAX_SITES:
            break
    return [
        AffordanceSite(path, affordance, site, tuple(dict.fromkeys(operations)),
                       tuple(dict.fromkeys(cells.get((path, affordance, site), ()))))
        for (path, affordance, site), operations in list(found.items())[:MAX_SITES]
    ]


def size_rank(value: int | float | None, sizes: list[int | float]) -> Qualifier | None:
    """An element's rank by |value| among its container's nonzero numbers (`sizes`: every
    number's |value|): "zero", "weakest", "strongest", "middle", or "tied" when the nonzero
    ones are all equal; None for an element that is not a number. For every element of a
    container at once, `size_ranks` (this costs the container's length)."""
    return size_ranks([value], sizes)[0]


def size_ranks(values: list[int | float | None], sizes: list[int | float]
               ) -> list[Qualifier | None]:
    """`size_rank` of each value among the same `sizes`, the bounds found once: per element it
    took a 40,000-number list 60 s a proposal (quadratic)."""
    nonzero = [size for size in sizes if size != 0]
    low, high = (min(nonzero), max(nonzero)) if nonzero else (0, 0)
    ranks: list[Qualifier | None] = []
    for value in values:
        if value is None or value == 0:
            ranks.append(None if value is None else "zero")
        elif low == high:
            ranks.append("tied")
        else:
            size = abs(value)
            ranks.append("weakest" if size == low else "strongest" if size == high else "middle")
    return ranks


def moved(old: int | float, new: float) -> Qualifier:
    """How a perturbed number moved relative to zero."""
    if old == 0:
        return "from_zero"
    if new == 0:
        return "toward_zero"
    if (old < 0) != (new < 0):
        return "sign_flip"
    return "toward_zero" if abs(new) < abs(old) else "away_from_zero"


def site_label(path: str, label: str | None, line: int) -> str:
    """The site as a Change records it: `path:label`, or `path:line N` for an unnamed one."""
    return f"{path}:{label if label else f'line {line}'}"[:MAX_NAME]


def site_matches(site: str, targets: tuple[str, ...]) -> bool:
    """A site is a target, or an element of one (`strategy.py:WEIGHTS` covers `...WEIGHTS[3]`)."""
    return any(site == target or site.startswith(target + "[") for target in targets)


def name_affordance(label: str | None, scalar: bool = True) -> Affordance | None:
    """The affordance a name says, innermost part first; None when no rule matches. A scalar
    named like a weight is just a constant; a container so named is a weight vector."""
    for part in reversed(_PART.findall(label or "")):
        words = [word.lower() for word in _WORD.findall(part)]
        pairs = set(itertools.pairwise(words))
        if not scalar and _WEIGHT_WORDS.intersection(words):
            return "weight_vector"
        for affordance, singles, doubles in _RULES:
            if singles.intersection(words) or doubles & pairs:
                return affordance
    return None


def container_affordance(node: Container, label: str | None) -> Affordance:
    """Numbers -> weight_vector (unless the name says capacity, loop_bound...); strings ->
    sequence when the name speaks of order, else feature_set; anything else -> sequence for
    a list or tuple, constant otherwise."""
    elements = node.values if isinstance(node, ast.Dict) else node.elts
    named = name_affordance(label, scalar=False)
    if named is not None:
        return named
    if isinstance(node, ast.Dict) and any(
        name_affordance(_key_text(key)) for key in node.keys if key is not None
    ):
        return "constant"  # a settings dict (`{"lr": 0.1, "epochs": 5}`): each key says more
    if elements and all(number_value(element) is not None for element in elements):
        return "weight_vector"
    if elements and all(_is_text(element) for element in elements):
        words = {word.lower() for word in _WORD.findall(label or "")}
        return "sequence" if words & _ORDER_WORDS else "feature_set"
    return "sequence" if isinstance(node, ast.List | ast.Tuple) else "constant"


def number_affordance(
    label: str | None, within: Within | None, whole: Affordance | None = None
) -> Affordance:
    """A number's affordance: what its own name says (`PARAMS['lr']`), else its container's
    (an element of a weight vector), else what the enclosing name says, else constant.
    `whole`: the container's affordance, when the caller has it already."""
    if within is not None:
        container, container_label = within
        whole = whole or container_affordance(container, container_label)
        if whole == "weight_vector" and name_affordance(container_label, scalar=False):
            return whole  # `WEIGHTS['url_depth']` is a weight, whatever its key says
        key = label[len(container_label) :] if label and container_label else None
        return name_affordance(key) or whole
    return name_affordance(label) or "constant"


def element_affordance(
    element: ast.expr, label: str | None, within: Within, whole: Affordance | None = None
) -> Affordance:
    """Removing an element: a number's own affordance, else its container's."""
    whole = whole or container_affordance(*within)
    if number_value(element) is not None:
        return number_affordance(label, within, whole)
    return whole


def text_sections(text: str) -> list[str]:
    """A text file's blocks, named by their heading (`# Offer`) or `paragraph N`."""
    names: list[str] = []
    paragraph = 0
    for block in re.split(r"\n[ \t]*\n", text.strip()):
        first = block.strip().split("\n", 1)[0].strip()
        if not first:
            continue
        if first.startswith("#"):
            names.append(" ".join(first.lstrip("#").split())[:60] or "heading")
        else:
            paragraph += 1
            names.append(f"paragraph {paragraph}")
        if len(names) >= MAX_SITES:
            break
    return names


def _key_text(key: ast.expr) -> str | None:
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class _Listing(StrategyWalk):
    """The walk with hooks that list affordance sites, under the preconditions the offline
    operators have (pinned lines excluded, two elements to prune one, two distinct to swap)."""

    def __init__(
        self, src: SourceFile, found: dict[tuple[str, Affordance, str], list[Operation]],
        cells: dict[tuple[str, Affordance, str], list[str]],
    ) -> None:
        super().__init__(src)
        self.found = found
        self.cells = cells
        self.wholes: dict[int, Affordance] = {}  # id of a container node -> its affordance

    def add(
        self, affordance: Affordance, label: str | None, line: int, operation: Operation,
        qualifiers: tuple[Qualifier | None, ...] = (),
    ) -> None:
        if len(self.found) < MAX_SITES:
            key = (self.src.path, affordance, site_label(self.src.path, label, line))
            self.found.setdefault(key, []).append(operation)
            known = [f"{operation}:{affordance}/{q}" for q in qualifiers if q is not None]
            if known:
                self.cells.setdefault(key, []).extend(known)

    def free(self, node: ast.expr) -> bool:
        return not self.src.pinned(*self.src.span(node))

    def on_number(
        self, node: ast.expr, label: str | None, within: Within | None, wrap: bool
    ) -> None:
        if self.free(node):
            whole = None if within is None else self.wholes.get(id(within[0]))
            moves = ("from_zero",) if number_value(node) == 0 else _MOVES
            self.add(number_affordance(label, within, whole), label, node.lineno, "perturb",
                     moves)

    def on_switch(self, node: ast.Constant, label: str | None) -> None:
        if self.free(node):
            self.add("switch", label, node.lineno, "toggle", ("off" if node.value else "on",))

    def on_container(self, node: Container, label: str | None) -> None:
        if isinstance(node, ast.Dict) and any(key is None for key in node.keys):
            return
        whole = self.wholes[id(node)] = container_affordance(node, label)
        labelled = element_labels(self.src, node, label)
        values = [number_value(element) for element, _ in labelled]
        ranks = size_ranks(values, [abs(v) for v in values if v is not None])
        # A dict's values come with their keys, in order (no `**other` here, as checked).
        keys = node.keys if isinstance(node, ast.Dict) else [None] * len(labelled)
        for (element, element_label), each, key in zip(labelled, ranks, keys, strict=True):
            start = element if key is None else key
            rank = (each,)
            if len(labelled) >= 2 and not self.src.pinned(
                self.src.span(start)[0], self.src.span(element)[1]
            ):
                affordance = element_affordance(element, element_label, (node, label), whole)
                keyed = isinstance(node, ast.Dict | ast.Set)  # removal from a list shifts the rest
                self.add(affordance, element_label, start.lineno, "prune", rank if keyed else ())
            if number_value(element) and not isinstance(node, ast.Set) and self.free(element):
                affordance = number_affordance(element_label, (node, label), whole)
                self.add(affordance, element_label, element.lineno, "prune", rank)
        if isinstance(node, ast.List | ast.Tuple) and len(node.elts) >= 2:
            free = [self.src.text(*self.src.span(e)) for e in node.elts if self.free(e)]
            if len(set(free)) >= 2:
                self.add(whole, label, node.elts[0].lineno, "swap")
            values = [number_value(element) for element in node.elts]
            if all(v is not None for v in values) and any(values) and len(free) == len(values):
                self.add(whole, label, node.elts[0].lineno, "scale", _SIDES)

    def on_terms(
        self, operands: list[ast.expr], operators: list[ast.operator], label: str | None
    ) -> None:
        extents = [self.src.extent(operand) for operand in operands]
        for index, (start, end) in enumerate(extents):
            if index == 0 and not isinstance(operators[0], ast.Add):
                continue
            # The span the operator's edit removes: up to the next term, or from the previous.
            edit = (start, extents[1][0]) if index == 0 else (extents[index - 1][1], end)
            if not self.src.pinned(*edit):
                self.add("term", label, self.src.line(start), "prune")
