"""Priors from knowledge: class weights from live patterns (learned here or elsewhere), the
guidance lines an LLM reads, and the change a hypothesis plans."""

from __future__ import annotations

from pathlib import Path

from playbook import (
    BASE_RATE,
    CLASS_CAP,
    CLASS_FLOOR,
    NOTHING_KNOWN,
    AffordanceSite,
    Knowledge,
    class_weights,
    pattern_guidance,
    planned_change,
    strategy_affordances,
)
from research_dag import DERIVED_AUTHOR, Hypothesis, Pattern

EXAMPLES = Path(__file__).parent.parent / "examples"


def pattern(kind: str, wins: int, fails: int, status: str = "live", text: str = "") -> Pattern:
    operation, affordance = kind.split(":")
    return Pattern.model_validate({
        "mutation_kind": kind, "operation": operation, "affordance": affordance,
        "text": text or f"{kind} helps", "supporting": [f"{n:064x}" for n in range(wins)],
        "contradicting": [f"{n + 1000:064x}" for n in range(fails)], "status": status,
        "retired": status == "retired", "author": DERIVED_AUTHOR,
    })


def ranking_sites() -> list[AffordanceSite]:
    source = (EXAMPLES / "search_ranking" / "strategy.py").read_text()
    return strategy_affordances({"strategy.py": source})


def test_a_pattern_learned_elsewhere_weighs_its_class_where_the_affordance_exists() -> None:
    prune = pattern("prune:weight_vector", 6, 10)  # learned on finance, say
    absent = pattern("perturb:learning_rate", 9, 1)  # search_ranking has no learning rate
    retired = pattern("toggle:switch", 0, 20, status="retired")
    candidate = pattern("swap:feature_set", 5, 0, status="candidate")
    knowledge = Knowledge(patterns=(prune, absent, retired, candidate))
    weights, sources = class_weights(knowledge, ranking_sites())
    assert weights == {"prune:weight_vector": (7 / 18) / BASE_RATE}
    assert sources == {"prune:weight_vector": (prune.id,)}
    assert class_weights(NOTHING_KNOWN, ranking_sites()) == ({}, {})


def test_weights_are_floored_and_capped_and_the_first_live_pattern_of_a_class_sets_it() -> None:
    weak, strong, again = (
        pattern("toggle:switch", 0, 30), pattern("prune:weight_vector", 50, 0),
        pattern("prune:weight_vector", 0, 9, text="another scope"),
    )
    knowledge = Knowledge(patterns=(weak, strong, again), base_rates={weak.id: 0.5})
    weights, sources = class_weights(knowledge, ranking_sites())
    assert weights == {"toggle:switch": CLASS_FLOOR, "prune:weight_vector": CLASS_CAP}
    assert sources["prune:weight_vector"] == (strong.id, again.id)


def test_guidance_lines_are_live_statements_best_first_bounded_one_line() -> None:
    long = pattern("prune:feature_set", 4, 4, text="drop\nthe noise " * 100)
    lines = pattern_guidance(Knowledge(patterns=(
        pattern("toggle:switch", 3, 1), pattern("scale:weight_vector", 1, 1, status="retired"),
        long,
    )))
    assert lines[0] == "pattern (toggle:switch, 3/4 improved): toggle:switch helps"
    assert len(lines) == 2 and "\n" not in lines[1] and len(lines[1]) <= 300
    many = Knowledge(patterns=tuple(pattern("toggle:switch", n, 1) for n in range(20)))
    assert len(pattern_guidance(many)) == 6


def test_a_hypothesis_plans_its_class_at_its_sites() -> None:
    fields = {"pattern": "a" * 64, "problem": "b" * 64, "text": "prune a\nweak weight",
              "author": DERIVED_AUTHOR}
    planned = Hypothesis.model_validate({
        **fields, "mutation_kind": "prune:weight_vector", "operation": "prune",
        "affordance": "weight_vector", "sites": ["strategy.py:WEIGHTS"], "tries": 4,
    })
    plan = planned_change(planned)
    assert plan is not None
    assert (plan.hypothesis_id, plan.change_class, plan.sites, plan.text) == (
        planned.id, "prune:weight_vector", ("strategy.py:WEIGHTS",), "prune a weak weight"
    )
    old = Hypothesis.model_validate({**fields, "mutation_kind": "prune_element"})
    assert planned_change(old) is None  # made before hypotheses named a class
