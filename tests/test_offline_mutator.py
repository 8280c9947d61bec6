"""The offline mutator: minimal diffs, protected code, determinism, weights, structural changes."""

from __future__ import annotations

import ast
import io
import random
import tokenize
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.mutators import (
    OPERATOR_KINDS,
    MutationContext,
    MutationFailed,
    Mutator,
    OfflineMutator,
    Proposal,
)
from node.mutators.operators import OPERATIONS_OF
from playbook import PlannedChange
from research_dag import Experiment, Metric, Outcome, Problem

SAMPLE = '''"""Rank items by a weighted score (uses 2 weights, 0.5 by default)."""

import random

SEED = 1234
WEIGHTS = [0.35, 0.2, -0.1, 1.5]  # tuned by hand
PARAMS = {"alpha": 0.5, "beta": 2, "use_cache": True}
LIMIT = 10  # swarm: fixed
ORDER = (
    "recency",
    "price",  # cheapest first
    "rating",
)


def score(item, bonus=0.25, *, scale=3):
    """Score one item with 3 features."""
    rng = random.Random(seed=42)
    total = item[0] * WEIGHTS[0] + bonus - item[1] * 2  # the core formula
    note = f"{total:.3f} {item[2] + 1}"
    while True:
        total -= 0.5 * rng.random()
        if total < 4:
            break
    return total * scale


def solve(items):
    # Highest score first.
    return sorted(items, key=score, reverse=True)[:LIMIT]


if __name__ == "__main__":
    print(solve([[1, 2, 3]]))
'''

PROTECTED_LINES = (
    '"""Rank items by a weighted score (uses 2 weights, 0.5 by default)."""',
    "SEED = 1234",
    "LIMIT = 10  # swarm: fixed",
    '    """Score one item with 3 features."""',
    "    rng = random.Random(seed=42)",
    '    note = f"{total:.3f} {item[2] + 1}"',
    "    while True:",
    "    print(solve([[1, 2, 3]]))",
)

SMALL = """W = [0.5, 2]
FLAG = True


def f(x, a=3):
    return x + a - 1
"""

SMALL_SITES = {
    ("perturb_constant", "W[0]: 0.5"),
    ("perturb_constant", "W[1]: 2"),
    ("perturb_constant", "f(a): 3"),
    ("perturb_constant", "1"),
    ("zero_constant", "W[0]: 0.5"),
    ("zero_constant", "W[1]: 2"),
    ("prune_element", "W: removed [0] 0.5 (line 1)"),
    ("prune_element", "W: removed [1] 2 (line 1)"),
    ("toggle_bool", "FLAG: True"),
    ("swap_elements", "W: swapped [0] 0.5 and [1] 2 (line 1)"),
    ("rescale_list", "W: scaled 2 numbers"),
    ("prune_term", "dropped term x (line 6)"),
    ("prune_term", "dropped term a (line 6)"),
    ("prune_term", "dropped term 1 (line 6)"),
}


def problem_for(files: dict[str, str]) -> Problem:
    return Problem(
        name="ranking",
        statement="Rank items so the best come first.",
        metric=Metric(name="score", direction="maximize"),
        mutable=sorted(files),
        files={path: text.encode() for path, text in files.items()},
    )


def context_for(
    source: str,
    seed: int = 0,
    only: str | None = None,
    structural: bool = False,
    recent: Iterable[str] = (),
    weights: dict[str, float] | None = None,
) -> MutationContext:
    problem = problem_for({"strategy.py": source})
    if only is not None:
        weights = {kind: 1.0 if kind == only else 0.0 for kind in OPERATOR_KINDS}
    outcome = Outcome(status="ok", score=1.0)
    tried = [{"strategy.py": text} for text in recent]
    return MutationContext(
        problem=problem,
        best_files={"strategy.py": source},
        best_score=1.0,
        recent=tuple(Experiment(problem=problem.id, strategy=s, outcome=outcome) for s in tried),
        kind_weights=weights or {},
        structural=structural,
        rng=random.Random(seed),
    )


def propose(source: str, seed: int = 0, **options: Any) -> Proposal:
    return OfflineMutator().propose_now(context_for(source, seed, **options))


def hunks(diff: str) -> int:
    return sum(line.startswith("@@") for line in diff.splitlines())


def comments(source: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [token.string for token in tokens if token.type == tokenize.COMMENT]


def test_operator_kinds_are_the_record_names() -> None:
    assert OPERATOR_KINDS == (
        "perturb_constant",
        "zero_constant",
        "prune_element",
        "toggle_bool",
        "swap_elements",
        "rescale_list",
        "prune_term",
    )


def test_one_change_keeps_every_other_line_and_comment() -> None:
    for seed in range(200):
        proposal = propose(SAMPLE, seed)
        assert hunks(proposal.diff) == 1, proposal.description
        body = proposal.diff.splitlines()[3:]  # after the ---, +++ and @@ lines
        removed = [line for line in body if line.startswith("-")]
        added = [line for line in body if line.startswith("+")]
        # ORDER has one element per line: a swap edits two lines, a prune drops one.
        lines = 2 if proposal.description.startswith("ORDER: swapped") else 1
        assert len(removed) == lines, proposal.diff
        assert len(added) == (0 if proposal.description.startswith("ORDER: removed") else lines)
        if proposal.mutation_kind != "prune_element":
            assert comments(proposal.files["strategy.py"]) == comments(SAMPLE)


def test_same_seed_same_proposal_and_seeds_explore() -> None:
    assert propose(SAMPLE, 7) == propose(SAMPLE, 7)
    assert propose(SAMPLE, 7, structural=True) == propose(SAMPLE, 7, structural=True)
    assert len({propose(SAMPLE, seed).description for seed in range(20)}) >= 10


def test_two_hundred_seeds_hit_every_kind_and_every_site() -> None:
    hit = set()
    for seed in range(200):
        proposal = propose(SMALL, seed)
        site = proposal.description.split(" -> ")[0].split(" by ")[0]
        hit.add((proposal.mutation_kind, site))
    assert hit == SMALL_SITES


@pytest.mark.parametrize("structural", [False, True])
def test_protected_code_never_changes(structural: bool) -> None:
    def indices(source: str) -> set[str]:
        tree = ast.parse(source)
        return {ast.dump(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}

    for seed in range(200):
        new = propose(SAMPLE, seed, structural=structural).files["strategy.py"]
        lines = new.splitlines()
        for protected in PROTECTED_LINES:
            assert protected in lines, (seed, protected)
        assert new.endswith('if __name__ == "__main__":\n    print(solve([[1, 2, 3]]))\n')
        assert indices(new) <= indices(SAMPLE)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), structural=st.booleans())
def test_every_proposal_parses_and_differs(seed: int, structural: bool) -> None:
    proposal = propose(SAMPLE, seed, structural=structural)
    assert ast.parse(proposal.files["strategy.py"])
    assert proposal.files["strategy.py"] != SAMPLE
    assert proposal.diff


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000) | st.booleans(),
        min_size=1,
        max_size=6,
    ),
    one_per_line=st.booleans(),
    trailing_comma=st.booleans(),
    brackets=st.sampled_from(["[]", "()", "{}"]),
    seed=st.integers(0, 1000),
    structural=st.booleans(),
)
def test_generated_literals_always_give_valid_code(
    values: list[float | int | bool],
    one_per_line: bool,
    trailing_comma: bool,
    brackets: str,
    seed: int,
    structural: bool,
) -> None:
    items = [repr(value) for value in values]
    if one_per_line:
        body = "".join(f"    {item},  # n{index}\n" for index, item in enumerate(items))
        literal = f"{brackets[0]}\n{body}{brackets[1]}"
    else:
        literal = brackets[0] + ", ".join(items) + ("," if trailing_comma else "") + brackets[1]
    source = f"X = {literal}\ny = a + X - b * 2.5\n"
    proposal = propose(source, seed, structural=structural)
    new = proposal.files["strategy.py"]
    assert new != source
    assert ast.parse(new)


def test_zero_weight_excludes_a_kind() -> None:
    kinds = {
        propose(SAMPLE, seed, weights={"toggle_bool": 0.0}).mutation_kind for seed in range(100)
    }
    assert "toggle_bool" not in kinds
    assert len(kinds) == len(OPERATOR_KINDS) - 1
    with pytest.raises(MutationFailed) as failure:
        propose(SAMPLE, weights={kind: 0.0 for kind in OPERATOR_KINDS})
    assert not failure.value.retryable


@pytest.mark.parametrize(
    "source",
    [
        "def solve(items):\n    return sorted(items)\n",
        '"""Only 0.5 protected things."""\nSEED = 3\nLIMIT = 10  # swarm: fixed\n',
        "X = items[0]\nrun(seed=4, random_state=5)\n",
        "this is not python\n",
    ],
)
def test_no_site_is_a_final_failure(source: str) -> None:
    with pytest.raises(MutationFailed) as failure:
        propose(source)
    assert not failure.value.retryable


def test_recent_strategies_are_avoided_while_an_alternative_exists() -> None:
    source = "W = [1, 2, 3]\n"
    recent = ["W = [2, 3]\n", "W = [1, 3]\n"]
    for seed in range(20):
        proposal = propose(source, seed, only="prune_element", recent=recent)
        assert proposal.files["strategy.py"] == "W = [1, 2]\n"
    # The only change was tried recently: it is proposed again rather than failing.
    again = propose("FLAG = True\n", only="toggle_bool", recent=["FLAG = False\n"])
    assert again.files["strategy.py"] == "FLAG = False\n"


def test_structural_combines_different_families() -> None:
    same_family = (
        {"perturb_constant", "zero_constant", "rescale_list"},
        {"prune_element", "prune_term"},
    )
    for seed in range(100):
        proposal = propose(SAMPLE, seed, structural=True)
        prefix, _, combined = proposal.mutation_kind.partition(":")
        kinds = combined.split("+")
        assert prefix == "structural"
        assert 2 <= len(kinds) <= 3
        assert all(len(family.intersection(kinds)) <= 1 for family in same_family)
        assert len(set(kinds)) == len(kinds)
        assert list(kinds) == sorted(kinds, key=OPERATOR_KINDS.index)
        assert proposal.description.count("(line ") == len(kinds)


def test_structural_falls_back_to_one_change_when_only_one_site_exists() -> None:
    proposal = propose("FLAG = True\n", structural=True)
    assert proposal.mutation_kind == "toggle_bool"


def test_only_mutable_python_files_change() -> None:
    files = {"a.py": "X = 1\n", "b.py": "Y = 2.5\n", "notes.txt": "Z = 3\n"}
    problem = problem_for(files)
    for seed in range(20):
        context = MutationContext(
            problem=problem, best_files=files, best_score=None, rng=random.Random(seed)
        )
        proposal = OfflineMutator().propose_now(context)
        assert proposal.files["notes.txt"] == "Z = 3\n"
        assert set(proposal.files) == set(files)
        assert "a.py line 1" in proposal.description or "b.py line 1" in proposal.description


async def test_propose_is_async_and_matches_the_sync_path() -> None:
    mutator: Mutator = OfflineMutator()
    assert mutator.name == "offline"
    proposal = await mutator.propose(context_for(SAMPLE, 11))
    assert proposal == OfflineMutator().propose_now(context_for(SAMPLE, 11))


def test_a_pin_on_a_first_line_pins_the_statement_and_elsewhere_its_line() -> None:
    source = """W = [  # swarm: fixed
    0.5,
    0.3,
]
V = [
    0.5,
    0.3,  # swarm: fixed
]
def f(  # swarm: fixed
    a=1,
):
    return a * 2
"""
    changed_v = False
    for seed in range(100):
        new = propose(source, seed).files["strategy.py"]
        assert new.startswith("W = [  # swarm: fixed\n    0.5,\n    0.3,\n]\nV = [\n")
        assert "    0.3,  # swarm: fixed\n]\n" in new
        assert "def f(  # swarm: fixed\n    a=1,\n):\n" in new
        changed_v |= "V = [\n    0.5,\n" not in new
    assert changed_v


def _with(source: str, seed: int, **fields: Any) -> Proposal:
    context = context_for(source, seed)
    return OfflineMutator().propose_now(replace(context, **fields))


def test_structural_proposals_list_each_change() -> None:
    for seed in range(30):
        proposal = propose(SAMPLE, seed, structural=True)
        kinds = proposal.mutation_kind.removeprefix("structural:").split("+")
        assert [c.operation for c in proposal.changes] == [OPERATIONS_OF[k] for k in kinds]
        assert all(change.site.startswith("strategy.py:") for change in proposal.changes)


def test_class_weights_steer_the_draw_and_proposals_list_the_patterns_used() -> None:
    def share(weights: dict[str, float]) -> float:
        classes = [
            _with(SAMPLE, seed, class_weights=weights).changes[0].change_class
            for seed in range(300)
        ]
        return classes.count("prune:weight_vector") / len(classes)

    cold, warm = share({}), share({"prune:weight_vector": 8.0})
    assert warm > 2 * cold
    assert share({"prune:weight_vector": 0.0}) == 0.0  # a zero weight excludes the class
    applied = {"prune:weight_vector": ("p" * 64,), "toggle:switch": ("q" * 64,)}
    for seed in range(40):
        proposal = _with(SAMPLE, seed, class_patterns=applied)
        classes = {change.change_class for change in proposal.changes}
        expected = [pid for cls, ids in applied.items() if cls in classes for pid in ids]
        assert list(proposal.applied) == expected


def test_without_class_weights_the_draw_is_what_it_was() -> None:
    """Empty knowledge changes nothing: a class weight of 1.0 everywhere is no weight."""
    uniform = {"prune:weight_vector": 1.0, "perturb:constant": 1.0}
    for seed in range(40):
        assert propose(SAMPLE, seed).files == _with(SAMPLE, seed, class_weights=uniform).files


def test_a_plan_makes_exactly_its_change_at_one_of_its_sites() -> None:
    sites = ('strategy.py:PARAMS["alpha"]', "strategy.py:WEIGHTS")
    plan = PlannedChange("h" * 64, "perturb", "weight_vector", sites, "weights are off")
    seen = set()
    for seed in range(60):
        proposal = _with(SAMPLE, seed, plan=plan, structural=True)
        assert proposal.hypothesis_id == "h" * 64 and proposal.hypothesis == "weights are off"
        (change,) = proposal.changes
        assert (change.operation, change.affordance) == ("perturb", "weight_vector")
        seen.add(change.site)
    assert seen == {f"strategy.py:WEIGHTS[{n}]" for n in range(4)}  # PARAMS is no weight vector
    nowhere = PlannedChange("h" * 64, "toggle", "switch", ("strategy.py:MISSING",), "")
    with pytest.raises(MutationFailed) as failed:
        _with(SAMPLE, 0, plan=nowhere)
    assert failed.value.retryable and "planned change toggle:switch" in failed.value.reason
