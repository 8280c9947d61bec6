"""The offline operators, one at a time: the exact text each edit produces."""

from __future__ import annotations

import ast
import random

import pytest

from node.mutators import OPERATOR_KINDS, MutationContext, OfflineMutator, Proposal, make_diff
from node.mutators.operators import (
    OPERATIONS_OF,
    PERTURB_CONSTANT,
    PRUNE_ELEMENT,
    PRUNE_TERM,
    RESCALE_LIST,
    SWAP_ELEMENTS,
    TOGGLE_BOOL,
    ZERO_CONSTANT,
)
from research_dag import Metric, Problem


def propose(source: str, seed: int, only: str) -> Proposal:
    problem = Problem(
        name="ranking",
        statement="Rank items so the best come first.",
        metric=Metric(name="score", direction="maximize"),
        mutable=["strategy.py"],
        files={"strategy.py": source.encode()},
    )
    context = MutationContext(
        problem=problem,
        best_files={"strategy.py": source},
        best_score=None,
        kind_weights={kind: 1.0 if kind == only else 0.0 for kind in OPERATOR_KINDS},
        rng=random.Random(seed),
    )
    return OfflineMutator().propose_now(context)


def outcomes(source: str, kind: str, seeds: int = 60) -> set[str]:
    results = set()
    for seed in range(seeds):
        proposal = propose(source, seed, kind)
        assert proposal.mutation_kind == kind
        results.add(proposal.files["strategy.py"])
    return results


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("0.5", {"0.25", "0.4", "0.45", "0.55", "0.625", "1.0", "0.49", "0.51", "-0.5"}),
        ("4", {"5", "3", "6", "2", "8"}),
        ("-3", {"-2", "-4", "-1", "-5", "-6"}),
        ("0.0", {"0.1", "-0.1"}),
    ],
)
def test_perturb_constant_moves_to_a_nearby_value_of_the_same_type(
    literal: str, expected: set[str]
) -> None:
    results = outcomes(f"X = {literal}  # weight\n", "perturb_constant", 200)
    assert {text.removeprefix("X = ").removesuffix("  # weight\n") for text in results} == expected


def test_perturb_constant_keeps_a_negated_power_base_in_parentheses() -> None:
    for text in outcomes("Y = 2.0 ** x\n", "perturb_constant", 200):
        base = text.removeprefix("Y = ").split(" ** ")[0]
        assert not base.startswith("-"), text
        assert ast.parse(text)


@pytest.mark.parametrize(
    ("source", "kind", "expected"),
    [
        ("W = [0.0, 0.35]\n", "zero_constant", {"W = [0.0, 0.0]\n"}),
        ('D = {"a": 3, "b": 0}\n', "zero_constant", {'D = {"a": 0, "b": 0}\n'}),
        ('D = {"naïve": 0.5}  # café\n', "zero_constant", {'D = {"naïve": 0.0}  # café\n'}),
        ("FLAG = True\n", "toggle_bool", {"FLAG = False\n"}),
        ("def f(strict=False):\n    pass\n", "toggle_bool", {"def f(strict=True):\n    pass\n"}),
        ('ORDER = ["x", "y"]\n', "swap_elements", {'ORDER = ["y", "x"]\n'}),
        ("W = [1, 2, 3]\n", "prune_element", {"W = [2, 3]\n", "W = [1, 3]\n", "W = [1, 2]\n"}),
        ("T = (5, 7)\n", "prune_element", {"T = (7,)\n", "T = (5,)\n"}),
        ("S = {5, 7}\n", "prune_element", {"S = {7}\n", "S = {5}\n"}),
        ('D = {"a": 1, "b": 2}\n', "prune_element", {'D = {"b": 2}\n', 'D = {"a": 1}\n'}),
        (
            "W = [\n    0.1,  # first\n    0.2,\n    0.3,\n]\n",
            "prune_element",
            {
                "W = [\n    0.2,\n    0.3,\n]\n",
                "W = [\n    0.1,  # first\n    0.3,\n]\n",
                "W = [\n    0.1,  # first\n    0.2,\n]\n",
            },
        ),
        ("W = [1,\n     2]\n", "prune_element", {"W = [2]\n", "W = [1]\n"}),
        ("y = a + b - c\n", "prune_term", {"y = b - c\n", "y = a - c\n", "y = a + b\n"}),
        ("y = a - b\n", "prune_term", {"y = a\n"}),
        ("y = (a) + b * 2\n", "prune_term", {"y = b * 2\n", "y = (a)\n"}),
        (
            "y = (a + b) + c\n",
            "prune_term",
            {"y = c\n", "y = (a + b)\n", "y = (b) + c\n", "y = (a) + c\n"},
        ),
        (
            "W = [1.0, 0.5]\n",
            "rescale_list",
            {"W = [0.5, 0.25]\n", "W = [0.8, 0.4]\n", "W = [1.25, 0.625]\n", "W = [2.0, 1.0]\n"},
        ),
        (
            "W = (4, 0, -2)\n",
            "rescale_list",
            {"W = (2, 0, -1)\n", "W = (3, 0, -2)\n", "W = (5, 0, -2)\n", "W = (8, 0, -4)\n"},
        ),
    ],
)
def test_each_operator_makes_its_exact_edit(source: str, kind: str, expected: set[str]) -> None:
    assert outcomes(source, kind) == expected


def test_description_names_the_target_the_values_and_the_line() -> None:
    proposal = propose("# weights\nWEIGHTS = [0.0, 0.35]\n", 0, "zero_constant")
    assert proposal.description == "WEIGHTS[1]: 0.35 -> 0.0 (line 2)"
    assert proposal.mutation_kind == "zero_constant"
    assert proposal.hypothesis
    assert proposal.usage.cost_usd == 0.0
    assert proposal.diff == make_diff(
        {"strategy.py": "# weights\nWEIGHTS = [0.0, 0.35]\n"}, proposal.files
    )
    assert proposal.diff.startswith("--- a/strategy.py\n+++ b/strategy.py\n@@ ")


VOCABULARY_SOURCE = """\
WEIGHTS = [0.35, 0.2, -0.1, 1.5]
FEATURES = ["price", "rating"]
THRESHOLD = 0.5
USE_CACHE = True


def score(x, lr=0.1):
    return x * WEIGHTS[0] + 2 - x
"""


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (PERTURB_CONSTANT, {
            ("perturb", "weight_vector", "strategy.py:WEIGHTS[0]"),
            ("perturb", "threshold", "strategy.py:THRESHOLD"),
            ("perturb", "learning_rate", "strategy.py:score(lr)"),
            ("perturb", "constant", "strategy.py:line 8"),
        }),
        (ZERO_CONSTANT, {("prune", "weight_vector", "strategy.py:WEIGHTS[3]")}),
        (PRUNE_ELEMENT, {
            ("prune", "weight_vector", "strategy.py:WEIGHTS[1]"),
            ("prune", "feature_set", "strategy.py:FEATURES[0]"),
        }),
        (PRUNE_TERM, {("prune", "term", "strategy.py:line 8")}),
        (TOGGLE_BOOL, {("toggle", "switch", "strategy.py:USE_CACHE")}),
        (SWAP_ELEMENTS, {
            ("swap", "weight_vector", "strategy.py:WEIGHTS"),
            ("swap", "feature_set", "strategy.py:FEATURES"),
        }),
        (RESCALE_LIST, {("scale", "weight_vector", "strategy.py:WEIGHTS")}),
    ],
)
def test_each_operator_describes_its_change_in_the_shared_vocabulary(
    kind: str, expected: set[tuple[str, str, str]]
) -> None:
    """Every kind maps to one operation; the affordance is the site's; the site its label."""
    described = set()
    for seed in range(80):
        proposal = propose(VOCABULARY_SOURCE, seed, kind)
        assert len(proposal.changes) == 1 and proposal.hypothesis_id is None
        change = proposal.changes[0]
        assert change.operation == OPERATIONS_OF[kind]
        described.add((change.operation, change.affordance, change.site))
    assert expected <= described
    assert {(op, aff) for op, aff, _ in described} == {(op, aff) for op, aff, _ in expected}
