"""Where the offline operators may act in a strategy: the playbook's walk, with hooks that make
operator sites named by the playbook's affordance rules."""

from __future__ import annotations

import ast

from node.mutators.operators import (
    Site,
    container_sites,
    number_site,
    term_sites,
    toggle_site,
)
from playbook import (
    Container,
    SourceFile,
    StrategyWalk,
    Within,
    container_affordance,
    number_affordance,
    parse,
)
from research_dag import Affordance


def collect_sites(path: str, text: str) -> list[Site]:
    """Every site of every operator in one file, in source order; [] if it does not parse."""
    tree = parse(text)
    if tree is None:
        return []
    walk = _Sites(SourceFile(path, text, tree))
    walk.run()
    return walk.sites


class _Sites(StrategyWalk):
    """The walk (playbook.StrategyWalk: what is off-limits) collecting operator sites."""

    def __init__(self, src: SourceFile) -> None:
        super().__init__(src)
        self.sites: list[Site] = []
        self.wholes: dict[int, Affordance] = {}  # id of a container node -> its affordance

    def add(self, *sites: Site | None) -> None:
        self.sites.extend(site for site in sites if site is not None)

    def on_number(
        self, node: ast.expr, label: str | None, within: Within | None, wrap: bool
    ) -> None:
        whole = None if within is None else self.wholes.get(id(within[0]))
        affordance = number_affordance(label, within, whole)
        self.add(number_site(self.src, node, label, affordance, wrap))

    def on_switch(self, node: ast.Constant, label: str | None) -> None:
        self.add(toggle_site(self.src, node, label))

    def on_container(self, node: Container, label: str | None) -> None:
        whole = self.wholes[id(node)] = container_affordance(node, label)
        self.add(*container_sites(self.src, node, label, whole))

    def on_terms(
        self, operands: list[ast.expr], operators: list[ast.operator], label: str | None
    ) -> None:
        self.add(*term_sites(self.src, operands, operators, label))
