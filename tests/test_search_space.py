"""The model's search space (issue 14, TPE's table): a strategy's `True`/`False` switches are
knobs the model values as categories (a toggle keeps the structure), and a model proposal is
either the importance-chosen knob or the model's whole suggestion, drawn by how each fared."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.mutators import MutationContext, OfflineMutator, Search
from node.mutators import model as model_search
from node.mutators.memory import MODEL
from node.mutators.model import knob_range
from node.mutators.structure import knob_text, shape_of
from playbook import parse
from research_dag import Experiment, Metric, Outcome, Problem

SOURCE = """RATE = 0.1
DEPTH = 4
SQUARES = False
STANDARDIZE = True
PINNED = True  # swarm: fixed


def solve(x):
    y = x * RATE + DEPTH
    if SQUARES:
        y = y * y
    return -y if STANDARDIZE and PINNED else y
"""


def source(rate: float, depth: int, squares: bool, standardize: bool) -> str:
    return (SOURCE.replace("RATE = 0.1", f"RATE = {rate!r}")
            .replace("DEPTH = 4", f"DEPTH = {depth}")
            .replace("SQUARES = False", f"SQUARES = {squares}")
            .replace("STANDARDIZE = True", f"STANDARDIZE = {standardize}"))


def score(rate: float, depth: int, squares: bool, standardize: bool) -> float:
    return -abs(rate - 0.3) - abs(depth - 6) / 4 + squares - standardize


PROBLEM = Problem(name="toy", statement="A toy.", metric=Metric(name="s", direction="maximize"),
                  mutable=["strategy.py"], files={"strategy.py": SOURCE.encode()})


def record(text: str, value: float, n: int, parent: str | None) -> Experiment:
    return Experiment.model_validate({
        "problem": PROBLEM.id, "strategy": {"strategy.py": text},
        "outcome": Outcome(status="ok", score=value), "author": "me", "created_ms": n,
        "parent": parent, "mutation_kind": "model_retune" if parent else "baseline",
        "mutator": "offline" if parent else "baseline",
    }, strict=False)


def fed(observations: int, joint_wins: bool) -> Search:
    """A search whose observations all changed every knob from the baseline; they beat it
    (`joint_wins`) or all lose to it."""
    search = Search(PROBLEM, families=(MODEL,))
    base = record(SOURCE, 0.0, 0, None)
    search.observe(base)
    rng = random.Random(1)
    for n in range(observations):
        rate, depth = rng.uniform(0.2, 0.9), rng.randint(5, 12)
        value = 1.0 + n if joint_wins else -1.0 - n
        search.observe(record(source(rate, depth, True, False), value, n + 1, base.id))
    return search


def context(search: Search, seed: int) -> MutationContext:
    return MutationContext(problem=PROBLEM, best_files={"strategy.py": SOURCE},
                           best_score=0.0, rng=random.Random(seed), search=search)


def test_switches_are_knobs_and_a_toggle_keeps_the_structure() -> None:
    shape = shape_of({"strategy.py": SOURCE}, ["strategy.py"])
    assert shape is not None
    labels = [site.split(":", 1)[1] for site in shape.sites]
    assert labels == ["RATE", "DEPTH", "SQUARES", "STANDARDIZE"]  # not the pinned switch
    assert shape.values == (0.1, 4.0, 0.0, 1.0)
    assert [knob.switch for knob in shape.knobs] == [False, False, True, True]
    toggled = shape_of({"strategy.py": source(0.1, 4, True, False)}, ["strategy.py"])
    assert toggled is not None and toggled.key == shape.key and toggled.values[2:] == (1.0, 0.0)
    switch = shape.knobs[2]
    assert knob_range(switch, 0.0) == (0.0, 1.0, False)
    assert knob_text(switch, 1.0) == "True" and knob_text(switch, 0.0) == "False"


@settings(max_examples=40, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.booleans(), st.booleans())
def test_a_structure_key_ignores_values_and_switches(rate: float, a: bool, b: bool) -> None:
    base = shape_of({"strategy.py": SOURCE}, ["strategy.py"])
    changed = shape_of({"strategy.py": source(rate, 4, a, b)}, ["strategy.py"])
    assert base is not None and changed is not None and changed.key == base.key


def test_the_model_proposes_whole_suggestions_when_they_win() -> None:
    winning = fed(30, joint_wins=True)
    proposals = [OfflineMutator().propose_now(context(winning, seed)) for seed in range(6)]
    again = fed(30, joint_wins=True)  # the same records, the same seeds: the same proposals
    assert [OfflineMutator().propose_now(context(again, seed)) for seed in range(6)] == proposals
    assert all(p.family == MODEL for p in proposals)
    sizes = [len(p.changes) for p in proposals]
    assert max(sizes) > 1, sizes  # the model's whole suggestion: a retune listing each knob
    for proposal in proposals:
        assert parse(proposal.files["strategy.py"]) is not None
        assert proposal.description.count("->") == len(proposal.changes)
        for change in proposal.changes:
            if change.affordance == "switch":
                assert change.operation == "toggle" and change.qualifier in ("on", "off")
                name = change.site.split(":", 1)[1]
                assert f"{name} = {'True' if change.qualifier == 'on' else 'False'}" in \
                    proposal.files["strategy.py"]


def test_losing_whole_suggestions_give_way_to_one_knob() -> None:
    losing = fed(30, joint_wins=False)
    sizes = [len(OfflineMutator().propose_now(context(losing, seed)).changes)
             for seed in range(6)]
    assert sizes.count(1) >= 5, sizes


def test_without_joint_proposals_the_model_sets_one_knob(
        monkeypatch: pytest.MonkeyPatch) -> None:
    search = fed(30, joint_wins=True)
    monkeypatch.setattr(model_search, "JOINT", False)
    sizes = [len(OfflineMutator().propose_now(context(search, seed)).changes)
             for seed in range(6)]
    assert sizes == [1] * 6
