"""Qualifiers below the change class: what the offline operators say about each change, that a
record without one keeps its bytes, that the curator judges cells like classes, that a cell's
prior is shrunk toward its class's, and that a planned cell is the change made."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from playbook_history import History, everything, make_problem

from node.mutators import OPERATOR_KINDS, MutationContext, OfflineMutator
from node.mutators.operators import PRUNE_ELEMENT, TOGGLE_BOOL, ZERO_CONSTANT
from playbook import (
    BASE_RATE,
    CELL_SHRINK,
    Knowledge,
    PlannedChange,
    change_cells,
    class_weights,
    derivation,
    moved,
    size_rank,
    strategy_affordances,
)
from research_dag import (
    DERIVED_AUTHOR,
    QUALIFIERS,
    Change,
    Experiment,
    Hypothesis,
    Metric,
    Outcome,
    Pattern,
    Problem,
    decode_record,
    encode_record,
)

SOURCE = """\
WEIGHTS = [0.5, 2.0, -1.0, 0.0]
KEYED = {"a": 0.5, "b": 2.0, "c": -1.0, "d": 0.0}
ON = False
OFF = True
"""


def _problem(source: str = SOURCE) -> Problem:
    return Problem(name="cells", statement="Cells.", metric=Metric(name="s", direction="maximize"),
                   mutable=["strategy.py"], files={"strategy.py": source.encode()})


def _propose(seed: int, only: str, plan: PlannedChange | None = None) -> Change:
    context = MutationContext(
        problem=_problem(), best_files={"strategy.py": SOURCE}, best_score=None,
        kind_weights={kind: 1.0 if kind == only else 0.0 for kind in OPERATOR_KINDS},
        plan=plan, rng=random.Random(seed),
    )
    [change] = OfflineMutator().propose_now(context).changes
    return change


def test_operators_name_the_cell_of_each_change() -> None:
    seen: dict[str, set[str | None]] = {}
    for seed in range(80):
        for kind in (PRUNE_ELEMENT, ZERO_CONSTANT, TOGGLE_BOOL):
            change = _propose(seed, kind)
            seen.setdefault(f"{kind} {change.site}", set()).add(change.qualifier)
    assert seen['prune_element strategy.py:KEYED["a"]'] == {"weakest"}
    assert seen['prune_element strategy.py:KEYED["b"]'] == {"strongest"}
    assert seen['prune_element strategy.py:KEYED["c"]'] == {"middle"}
    assert seen['prune_element strategy.py:KEYED["d"]'] == {"zero"}
    # removing an element of a list shifts the rest: not a prune of that element
    assert seen["prune_element strategy.py:WEIGHTS[0]"] == {None}
    assert seen["zero_constant strategy.py:WEIGHTS[0]"] == {"weakest"}
    assert seen["zero_constant strategy.py:WEIGHTS[1]"] == {"strongest"}
    assert seen["toggle_bool strategy.py:ON"] == {"on"}
    assert seen["toggle_bool strategy.py:OFF"] == {"off"}


def test_the_static_listing_names_the_same_cells() -> None:
    sites = {site.site: site.cells for site in strategy_affordances({"strategy.py": SOURCE})}
    assert "prune:weight_vector/weakest" in sites["strategy.py:WEIGHTS[0]"]
    assert "toggle:switch/on" in sites["strategy.py:ON"]
    assert "perturb:weight_vector/from_zero" in sites["strategy.py:WEIGHTS[3]"]
    assert {"scale:weight_vector/up", "scale:weight_vector/down"} <= set(
        sites["strategy.py:WEIGHTS"])


@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False))
def test_a_move_is_named_by_where_it_leaves_the_number(old: float, new: float) -> None:
    move = moved(old, new)
    if old == 0:
        assert move == "from_zero"
    elif new == 0 or ((old > 0) == (new > 0) and abs(new) < abs(old)):
        assert move == "toward_zero"
    elif (old > 0) != (new > 0):
        assert move == "sign_flip"
    else:
        assert move == "away_from_zero"


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=8), st.data())
def test_a_rank_is_by_size_among_the_nonzero_numbers(values: list[int], data: st.DataObject
                                                     ) -> None:
    value = data.draw(st.sampled_from(values))
    rank = size_rank(value, [abs(v) for v in values])
    nonzero = {abs(v) for v in values if v}
    if value == 0:
        assert rank == "zero"
    elif len(nonzero) == 1:
        assert rank == "tied"
    else:
        expected = {min(nonzero): "weakest", max(nonzero): "strongest"}.get(abs(value), "middle")
        assert rank == expected


@given(st.sampled_from([None, *QUALIFIERS]))
def test_a_change_without_a_qualifier_keeps_the_bytes_it_had(qualifier: str | None) -> None:
    change = Change.model_validate({"operation": "prune", "affordance": "weight_vector",
                                    "site": "s.py:W[1]", "qualifier": qualifier})
    dumped = change.model_dump()
    assert ("qualifier" in dumped) == (qualifier is not None)
    assert Change.model_validate(dumped) == change


def test_a_planned_cell_is_the_change_made() -> None:
    for seed in range(20):
        plan = PlannedChange("0" * 64, "perturb", "weight_vector", ("strategy.py:WEIGHTS",),
                             "", "toward_zero")
        context = MutationContext(problem=_problem(), best_files={"strategy.py": SOURCE},
                                  best_score=None, plan=plan, rng=random.Random(seed))
        [change] = OfflineMutator().propose_now(context).changes
        assert change.change_cell == "perturb:weight_vector/toward_zero"
        toggle = PlannedChange("0" * 64, "toggle", "switch", (), "", "on")
        context = MutationContext(problem=_problem(), best_files={"strategy.py": SOURCE},
                                  best_score=None, plan=toggle, rng=random.Random(seed))
        [change] = OfflineMutator().propose_now(context).changes
        assert (change.site, change.qualifier) == ("strategy.py:ON", "on")


def _cell_history() -> History:
    """Toggling a switch on wins on two problems; toggling one off never does."""
    history = History([make_problem("finance", domains=["finance"]),
                       make_problem("search", domains=["search"])])
    for name in ("finance", "search"):
        history.attempts(name, "perturb:constant", 3, 30)
        history.attempts(name, "toggle:switch/on", 8, 2, authors=("a", "b"))
        history.attempts(name, "toggle:switch/off", 0, 10)
    return history


def test_the_curator_judges_a_cell_like_a_class() -> None:
    history = _cell_history()
    derived = derivation(history.dag(), everything)
    on = derived.chains["toggle:switch/on"][-1].pattern
    assert on.status == "live" and on.qualifier == "on" and on.mutation_kind == "toggle:switch/on"
    assert (on.operation, on.affordance) == ("toggle", "switch")
    assert derived.chains["toggle:switch/off"][-1].pattern.status != "live"
    assert decode_record(encode_record(on)) == on
    again = derivation(history.dag(), everything)
    assert [r.id for r in again.records()] == [r.id for r in derived.records()]
    for experiment in history.records:
        if isinstance(experiment, Experiment) and experiment.changes:
            cells = change_cells(experiment)
            assert all(c.partition("/")[0] in cells for c in cells)


def _pattern(kind: str, wins: int, fails: int, qualifier: str | None = None) -> Pattern:
    operation, affordance = kind.split(":")
    values = {
        "mutation_kind": kind + (f"/{qualifier}" if qualifier else ""), "operation": operation,
        "affordance": affordance, "text": "t", "status": "live", "author": DERIVED_AUTHOR,
        "supporting": [f"{n:064x}" for n in range(wins)],
        "contradicting": [f"{n + 1000:064x}" for n in range(fails)], "qualifier": qualifier,
    }
    return Pattern.model_validate(values)


def test_a_cells_weight_is_shrunk_toward_its_class() -> None:
    sites = strategy_affordances({"strategy.py": SOURCE})
    klass = _pattern("toggle:switch", 2, 18)
    cell = _pattern("toggle:switch", 4, 0, "on")
    weights, sources = class_weights(Knowledge(patterns=(klass, cell)), sites)
    class_rate = 3 / 22
    assert weights["toggle:switch"] == class_rate / BASE_RATE
    assert weights["toggle:switch/on"] == (4 + CELL_SHRINK * class_rate) / (4 + CELL_SHRINK) / (
        BASE_RATE)
    assert sources["toggle:switch/on"] == (cell.id,)
    alone, _ = class_weights(Knowledge(patterns=(cell,)), sites)  # no class: toward the base
    assert alone["toggle:switch/on"] == (4 + CELL_SHRINK * BASE_RATE) / (4 + CELL_SHRINK) / (
        BASE_RATE)


def test_a_hypothesis_names_its_cell_consistently() -> None:
    values = {"pattern": "0" * 64, "problem": "1" * 64, "text": "t", "operation": "toggle",
              "affordance": "switch", "mutation_kind": "toggle:switch/on", "qualifier": "on"}
    hypothesis = Hypothesis.model_validate(values)
    assert decode_record(encode_record(hypothesis)) == hypothesis
    for wrong in ({"mutation_kind": "toggle:switch"}, {"qualifier": "off"}):
        try:
            Hypothesis.model_validate({**values, **wrong})
        except ValueError:
            continue
        raise AssertionError(f"accepted {wrong}")


def test_a_live_cell_is_carried_only_where_the_target_offers_the_cell() -> None:
    history = _cell_history()
    history.problems["off"] = make_problem("off", "SWITCH = False\n", ["ml"], at=5_000)
    history.problems["on"] = make_problem("on", "SWITCH = True\n", ["ml"], at=5_000)
    history.records += [history.problems["off"], history.problems["on"]]
    for name in ("off", "on"):  # worked on (a baseline): a target (playbook/evidence.py)
        history.records.append(Experiment(
            problem=history.problems[name].id, strategy={"strategy.py": f"# {name}\n"},
            outcome=Outcome(status="ok", score=0.5), created_ms=history.tick(), author="a"))
    derived = derivation(history.dag(), everything)
    carried = {(h.mutation_kind, h.problem) for h in derived.hypotheses}
    off, on = history.problems["off"].id, history.problems["on"].id
    assert ("toggle:switch/on", off) in carried and ("toggle:switch/on", on) not in carried
    [hypothesis] = [h for h in derived.hypotheses if h.mutation_kind == "toggle:switch/on"
                    and h.problem == off]
    assert hypothesis.qualifier == "on" and hypothesis.sites == ["strategy.py:SWITCH"]
