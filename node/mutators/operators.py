"""The offline mutation operators: their kinds, their words in the shared vocabulary, and the
exact edit each makes at a site."""

from __future__ import annotations

import ast
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from playbook import (
    Container,
    SourceFile,
    element_affordance,
    moved,
    number_affordance,
    number_value,
    shorten,
    site_label,
    size_ranks,
)
from research_dag import MAX_NAME, Affordance, Operation, Qualifier

PERTURB_CONSTANT = "perturb_constant"
ZERO_CONSTANT = "zero_constant"
PRUNE_ELEMENT = "prune_element"
TOGGLE_BOOL = "toggle_bool"
SWAP_ELEMENTS = "swap_elements"
RESCALE_LIST = "rescale_list"
PRUNE_TERM = "prune_term"

# The names are part of the record format (Experiment.mutation_kind, playbook patterns).
OPERATOR_KINDS: tuple[str, ...] = (
    PERTURB_CONSTANT,
    ZERO_CONSTANT,
    PRUNE_ELEMENT,
    TOGGLE_BOOL,
    SWAP_ELEMENTS,
    RESCALE_LIST,
    PRUNE_TERM,
)

# Each kind in the shared vocabulary (research_dag OPERATIONS); the affordance comes from the
# site (playbook.affordances), except that dropping a term is always on a `term`.
OPERATIONS_OF: dict[str, Operation] = {
    PERTURB_CONSTANT: "perturb",
    ZERO_CONSTANT: "prune",
    PRUNE_ELEMENT: "prune",
    PRUNE_TERM: "prune",
    TOGGLE_BOOL: "toggle",
    SWAP_ELEMENTS: "swap",
    RESCALE_LIST: "scale",
}

# A structural change combines operators of different families.
FAMILIES: dict[str, str] = {
    PERTURB_CONSTANT: "value",
    ZERO_CONSTANT: "value",
    RESCALE_LIST: "value",
    PRUNE_ELEMENT: "prune",
    PRUNE_TERM: "prune",
    SWAP_ELEMENTS: "order",
    TOGGLE_BOOL: "switch",
}

HYPOTHESES: dict[str, str] = {
    PERTURB_CONSTANT: "a nearby value of a tuned constant may sit closer to the optimum",
    ZERO_CONSTANT: "switching off a factor shows whether it earns its place",
    PRUNE_ELEMENT: "pruning a weak element removes noise",
    TOGGLE_BOOL: "the opposite setting of this switch may suit the problem better",
    SWAP_ELEMENTS: "order matters here; another order may rank or combine better",
    RESCALE_LIST: "the relative weights may be right but their overall scale wrong",
    PRUNE_TERM: "this term may add more noise than signal",
}

FLOAT_FACTORS = (0.5, 0.8, 0.9, 1.1, 1.25, 2.0)
RESCALE_FACTORS = (0.5, 0.8, 1.25, 2.0)
_REST_OF_LINE = re.compile(rb"[ \t]*,?[ \t]*(#[^\r\n]*)?(\r\n|\r|\n)?")


@dataclass(frozen=True)
class Edit:
    """Replace bytes [start, end) of one file's UTF-8 source with `text`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Change:
    """One applied operator: its edits to one file, what changed, and the line it is on."""

    kind: str
    path: str
    edits: tuple[Edit, ...]
    description: str
    line: int
    qualifier: Qualifier | None = None  # which change of its class (research_dag.Qualifier)


@dataclass(frozen=True, eq=False)
class Site:
    """A place one operator can act; `draw` picks the concrete change (None: nothing new).
    `site` and `affordance` name it in the shared vocabulary (playbook.affordances)."""

    kind: str
    path: str
    line: int
    draw: Callable[[random.Random], Change | None]
    site: str
    affordance: Affordance
    # Known before the draw for a site whose change is settled (prune, toggle); else None, and
    # the drawn Change says (perturb, rescale).
    qualifier: Qualifier | None = None

    @property
    def change_class(self) -> str:
        return f"{OPERATIONS_OF[self.kind]}:{self.affordance}"

    @property
    def change_cell(self) -> str | None:
        """The class with the site's qualifier, when the site knows it before the draw."""
        return None if self.qualifier is None else f"{self.change_class}/{self.qualifier}"


def number_site(
    src: SourceFile,
    node: ast.expr,
    label: str | None,
    affordance: Affordance,
    wrap: bool = False,

) -> Site | None:
    """perturb_constant: scale, step or (rarely) negate a numeric literal; ints stay ints."""
    value = number_value(node)
    start, end = src.span(node)
    if value is None or src.pinned(start, end):
        return None
    old, line, path = src.text(start, end), src.line(start), src.path

    def draw(rng: random.Random) -> Change | None:
        for _ in range(8):
            text = format_number(perturbed(value, rng))
            if text is None or float(text) == value:
                continue
            if wrap and text.startswith("-") and not old.startswith("-"):
                text = f"({text})"
            description = f"{_where(label)}{shorten(old)} -> {shorten(text)}"
            edits = (Edit(start, end, text),)
            move = moved(value, float(text.strip("()")))
            return Change(PERTURB_CONSTANT, path, edits, description, line, move)
        return None

    return Site(PERTURB_CONSTANT, path, line, draw, site_label(path, label, line), affordance)


def toggle_site(src: SourceFile, node: ast.Constant, label: str | None) -> Site | None:
    """toggle_bool: `True` <-> `False`."""
    start, end = src.span(node)
    old, new = ("True", "False") if node.value else ("False", "True")
    description = f"{_where(label)}{old} -> {new}"
    line = src.line(start)
    edits = (Edit(start, end, new),)
    setting: Qualifier = "on" if new == "True" else "off"
    return _fixed_site(src, TOGGLE_BOOL, edits, description, line, label, "switch", setting)


def container_sites(
    src: SourceFile, node: Container, label: str | None, affordance: Affordance
) -> list[Site]:
    """prune_element and zero_constant per element; swap_elements and rescale_list per list
    (`affordance`: the container's, playbook.container_affordance)."""
    if isinstance(node, ast.Dict):
        keys = [key for key in node.keys if key is not None]
        if len(keys) < len(node.values):
            return []  # `**other` entries: leave the dict's shape alone
        spans = [(src.span(k)[0], src.span(v)[1]) for k, v in zip(keys, node.values, strict=True)]
        names = [f"[{src.quote(key)}]" for key in keys]
        elements = node.values
    else:
        spans = [src.span(element) for element in node.elts]
        names = [f"[{index}]" for index in range(len(node.elts))]
        elements = node.elts
    values = [number_value(element) for element in elements]
    ranks = size_ranks(values, [abs(value) for value in values if value is not None])
    # Removing an element of a list or tuple shifts every later one (a positional weight vector
    # no longer lines up): not a prune of that element, so no rank. Zeroing it is.
    keyed = isinstance(node, ast.Dict | ast.Set)
    sites: list[Site | None] = []
    for index, element in enumerate(elements):
        rank = ranks[index]
        line = src.line(spans[index][0])
        inner = f"{label}{names[index]}" if label else None
        if len(elements) >= 2:
            edit = _removal(src, node, spans, index)
            description = f"{_where(label)}removed {names[index]} {src.quote(element)}"
            removed = element_affordance(element, inner, (node, label), affordance)
            sites.append(
                _fixed_site(src, PRUNE_ELEMENT, (edit,), description, line, inner, removed,
                            rank if keyed else None)
            )
        if number_value(element) and not isinstance(node, ast.Set):
            start, end = src.span(element)
            zero = "0.0" if isinstance(number_value(element), float) else "0"
            description = f"{_where(inner)}{shorten(src.text(start, end))} -> {zero}"
            edits = (Edit(start, end, zero),)
            zeroed = number_affordance(inner, (node, label), affordance)
            sites.append(
                _fixed_site(
                    src, ZERO_CONSTANT, edits, description, src.line(start), inner, zeroed, rank
                )
            )
    if isinstance(node, ast.List | ast.Tuple) and len(elements) >= 2:
        sites.append(_swap_site(src, spans, label, affordance))
        sites.append(_rescale_site(src, elements, spans, label, affordance))
    return [site for site in sites if site is not None]


def term_sites(
    src: SourceFile, operands: list[ast.expr], operators: list[ast.operator], label: str | None
) -> list[Site]:
    """prune_term: drop one operand with its operator; the first only when followed by `+`."""
    extents = [src.extent(operand) for operand in operands]
    sites: list[Site | None] = []
    for index, (start, end) in enumerate(extents):
        if index == 0 and not isinstance(operators[0], ast.Add):
            continue  # `a - b` without `a` would need a unary minus: a different shape
        if index == 0:
            edit = Edit(start, extents[1][0], "")
        else:
            edit = Edit(extents[index - 1][1], end, "")
        description = f"{_where(label)}dropped term {src.quote(operands[index])}"
        line = src.line(start)
        sites.append(_fixed_site(src, PRUNE_TERM, (edit,), description, line, label, "term"))
    return [site for site in sites if site is not None]


def perturbed(value: int | float, rng: random.Random) -> int | float:
    """A nearby value: ints step by 1 or 2 or double/halve; floats scale, step, or flip sign."""
    if isinstance(value, int):
        candidates = (value + 1, value - 1, value + 2, value - 2, value * 2, value // 2)
        return rng.choice([candidate for candidate in candidates if candidate != value])
    if value == 0.0:
        return rng.choice((-0.1, 0.1))
    roll = rng.random()
    if roll < 0.6:
        return value * rng.choice(FLOAT_FACTORS)
    if roll < 0.95:
        step = 10.0 ** (math.floor(math.log10(abs(value))) - 1)
        return value + rng.choice((-step, step))
    return -value


def format_number(value: int | float) -> str | None:
    """Source text for a number: ints stay ints, floats keep ~6 significant digits; None for
    one with no such text (an int past Python's decimal digit limit: `0x` and 5,000 digits)."""
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # sys.get_int_max_str_digits: it raised on every proposal
            return None
    if not math.isfinite(value):
        return None
    return repr(float(f"{value:.6g}"))


def _fixed_site(
    src: SourceFile,
    kind: str,
    edits: tuple[Edit, ...],
    description: str,
    line: int,
    label: str | None,
    affordance: Affordance,
    qualifier: Qualifier | None = None,
) -> Site | None:
    """A site whose change is settled once found (no randomness left to draw)."""
    if any(src.pinned(edit.start, edit.end) for edit in edits):
        return None
    change = Change(kind, src.path, edits, description, line, qualifier)
    site = site_label(src.path, label, line)
    return Site(kind, src.path, line, lambda rng: change, site, affordance, qualifier)


def _removal(src: SourceFile, node: Container, spans: list[tuple[int, int]], index: int) -> Edit:
    start, end = spans[index]
    if isinstance(node, ast.Tuple) and len(spans) == 2:  # keep it a tuple: `(a, b)` -> `(b,)`
        return Edit(spans[0][0], spans[1][1], src.text(*spans[1 - index]) + ",")
    line_start, line_end = src.line_bounds(start, end)
    alone = not src.data[line_start:start].strip()
    if alone and _REST_OF_LINE.fullmatch(src.data[end:line_end]):
        return Edit(line_start, line_end, "")  # one element per line: drop its whole line
    if index + 1 < len(spans):
        return Edit(start, spans[index + 1][0], "")
    return Edit(spans[index - 1][1], end, "")


def _swap_site(
    src: SourceFile, spans: list[tuple[int, int]], label: str | None, affordance: Affordance
) -> Site | None:
    texts = [src.text(*span) for span in spans]
    free = [index for index, span in enumerate(spans) if not src.pinned(*span)]
    if len({texts[index] for index in free}) < 2:
        return None

    def draw(rng: random.Random) -> Change | None:
        first = rng.choice(free)
        second = rng.choice([index for index in free if texts[index] != texts[first]])
        i, j = sorted((first, second))
        edits = (Edit(*spans[i], texts[j]), Edit(*spans[j], texts[i]))
        shown = f"[{i}] {shorten(texts[i])} and [{j}] {shorten(texts[j])}"
        description = f"{_where(label)}swapped {shown}"
        return Change(SWAP_ELEMENTS, src.path, edits, description, src.line(spans[i][0]))

    line = src.line(spans[0][0])
    return Site(SWAP_ELEMENTS, src.path, line, draw, site_label(src.path, label, line), affordance)


def _rescale_site(
    src: SourceFile,
    elements: list[ast.expr],
    spans: list[tuple[int, int]],
    label: str | None,
    affordance: Affordance,
) -> Site | None:
    values = [number_value(element) for element in elements]
    numbers = [value for value in values if value is not None]
    if len(numbers) < len(values) or not any(numbers):
        return None
    if any(src.pinned(*span) for span in spans):
        return None
    line = src.line(spans[0][0])

    def draw(rng: random.Random) -> Change | None:
        factors = list(RESCALE_FACTORS)
        rng.shuffle(factors)
        for factor in factors:
            edits = []
            for (start, end), value in zip(spans, numbers, strict=True):
                text = format_number(_scaled(value, factor))
                if text is not None and float(text) != value:
                    edits.append(Edit(start, end, text))
            if edits:
                description = f"{_where(label)}scaled {len(numbers)} numbers by {factor}"
                side: Qualifier = "up" if factor > 1 else "down"
                return Change(RESCALE_LIST, src.path, tuple(edits), description, line, side)
        return None

    return Site(RESCALE_LIST, src.path, line, draw, site_label(src.path, label, line), affordance)


def _scaled(value: int | float, factor: float) -> int | float:
    if isinstance(value, float):
        return value * factor
    try:
        return round(value * factor)
    except OverflowError:  # an int past any float (`9` x 400): exactly, as ints are
        return round(value * Fraction(factor))


def _where(label: str | None) -> str:
    # A name has no length limit in Python, nor nesting in labels (`A[0][0]...`): bounded as
    # the site is (site_label), so every description stays well within a record's.
    return f"{label[:MAX_NAME]}: " if label else ""
