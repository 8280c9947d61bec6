"""A strategy's shape for model-based search: its knobs (the numeric literals the offline
operators may perturb, and the `True`/`False` switches they may toggle) and its structure (the
source with those literals abstracted)."""

from __future__ import annotations

import ast
import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from playbook import (
    Container,
    SourceFile,
    StrategyWalk,
    Within,
    container_affordance,
    number_affordance,
    number_value,
    parse,
    site_label,
)
from research_dag import Affordance

SHAPE_CACHE = 4096  # strategies whose shape is kept (by content digest)
MAX_KNOBS = 64  # knobs a model searches at once (the first ones in source order)
MAX_MAGNITUDE = 1e15  # larger literals are identifiers, masks or sizes, not knobs
# Longer literals (`1.000...0` in 200 KB, a `-(` comment `5)`) are data, not knobs: a knob's
# text is kept by every cached shape and quoted in a proposal's description.
MAX_LITERAL = 100
HOLE = "\x00"  # what stands for a knob in a structure's key


@dataclass(frozen=True)
class Knob:
    """One literal a model may set: a number, or a switch (`True`/`False`, valued 1.0/0.0)."""

    path: str
    start: int  # byte offsets into the file's UTF-8 source
    end: int
    site: str  # the shared vocabulary's site label ("strategy.py:WEIGHTS['f03']")
    affordance: Affordance
    line: int
    integer: bool
    wrap: bool  # a negative replacement needs parentheses
    text: str  # the literal as written
    switch: bool = False  # a `True`/`False` literal (a categorical knob)


@dataclass(frozen=True)
class Shape:
    """A strategy as the model sees it: `key` names its structure; `values` are its knobs'."""

    key: str
    knobs: tuple[Knob, ...]
    values: tuple[float, ...]

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(knob.site for knob in self.knobs)


class Shapes:
    """Shapes of strategies, computed once per content (a bounded cache)."""

    def __init__(self, capacity: int = SHAPE_CACHE) -> None:
        self.capacity = capacity
        self._cache: OrderedDict[str, Shape | None] = OrderedDict()

    def of(self, files: Mapping[str, str], mutable: list[str]) -> Shape | None:
        """The shape of the mutable .py files, or None if one does not parse."""
        digest = digest_of(files)
        if digest in self._cache:
            self._cache.move_to_end(digest)
            return self._cache[digest]
        shape = shape_of(files, mutable)
        self._cache[digest] = shape
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return shape


def shape_of(files: Mapping[str, str], mutable: list[str]) -> Shape | None:
    key = hashlib.sha256()
    knobs: list[Knob] = []
    values: list[float] = []
    for path in sorted(path for path in files if path.endswith(".py") and path in mutable):
        text = files[path]
        tree = parse(text)
        if tree is None:
            return None
        walk = _Knobs(SourceFile(path, text, tree))
        walk.run()
        data = text.encode("utf-8")
        cut = 0
        key.update(path.encode() + HOLE.encode())
        for found in sorted(walk.found, key=lambda found: found[0]):
            if len(knobs) >= MAX_KNOBS:
                break
            knob, value = walk.knob(*found)
            key.update(data[cut : knob.start] + HOLE.encode())
            cut = knob.end
            knobs.append(knob)
            values.append(value)
        key.update(data[cut:] + HOLE.encode())
    return Shape(key.hexdigest(), tuple(knobs), tuple(values))


def knob_text(knob: Knob, value: float) -> str | None:
    """Source text for a knob set to `value` (None: not a finite number)."""
    if knob.switch:
        return "True" if value >= 0.5 else "False"
    text = format_value(value, knob.integer)
    if text is not None and knob.wrap and text.startswith("-") and not knob.text.startswith("-"):
        return f"({text})"
    return text


def format_value(value: float, integer: bool) -> str | None:
    """Source text for a knob's value: ints stay ints, floats keep ~6 significant digits."""
    if not math.isfinite(value):
        return None
    if integer:
        return str(round(value))
    return repr(float(f"{value:.6g}"))


# A literal the walk found: (start, end, label, container, wrap, value, integer, switch);
# made a Knob only if it is among the first MAX_KNOBS (a 256 KB list holds 85,000 literals).
_Found = tuple[int, int, str | None, Within | None, bool, float, bool, bool]


class _Knobs(StrategyWalk):
    """The walk (playbook.StrategyWalk: what is off-limits) collecting unpinned numbers and
    switches."""

    def __init__(self, src: SourceFile) -> None:
        super().__init__(src)
        self.found: list[_Found] = []
        # id of a container node -> its affordance, computed once: per element it made a
        # literal of n numbers cost n**2 (a 256 KB list, hours)
        self.wholes: dict[int, Affordance] = {}

    def on_container(self, node: Container, label: str | None) -> None:
        self.wholes[id(node)] = container_affordance(node, label)

    def on_number(
        self, node: ast.expr, label: str | None, within: Within | None, wrap: bool
    ) -> None:
        value = number_value(node)
        start, end = self.src.span(node)
        if (value is None or abs(value) > MAX_MAGNITUDE or end - start > MAX_LITERAL
                or self.src.pinned(start, end)):
            return  # a 400-digit int has no float; a model cannot tune it either
        self.found.append((start, end, label, within, wrap, value, isinstance(value, int),
                           False))

    def on_switch(self, node: ast.Constant, label: str | None) -> None:
        start, end = self.src.span(node)
        if self.src.pinned(start, end):
            return
        self.found.append((start, end, label, None, False, 1.0 if node.value else 0.0, False,
                           True))

    def knob(self, start: int, end: int, label: str | None, within: Within | None, wrap: bool,
             value: float, integer: bool, switch: bool) -> tuple[Knob, float]:
        line = self.src.line(start)
        site = site_label(self.src.path, label, line)
        text = self.src.text(start, end)
        if switch:
            return Knob(path=self.src.path, start=start, end=end, site=site,
                        affordance="switch", line=line, integer=False, wrap=False, text=text,
                        switch=True), value
        whole = None if within is None else self.wholes.get(id(within[0]))
        return Knob(path=self.src.path, start=start, end=end, site=site,
                    affordance=number_affordance(label, within, whole), line=line,
                    integer=integer, wrap=wrap, text=text), float(value)


def digest_of(files: Mapping[str, str]) -> str:
    """A strategy's content digest (the loop's strategy_digest)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()
