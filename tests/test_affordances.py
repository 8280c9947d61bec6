"""Static affordance analysis: the bundled strategies read right, the listing is exactly the
offline mutator's sites in the shared vocabulary, and hostile sources stay bounded."""

from __future__ import annotations

import textwrap
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import given, settings

from node.mutators.operators import OPERATIONS_OF
from node.mutators.sites import collect_sites
from playbook import AffordanceSite, name_affordance, strategy_affordances, text_sections
from research_dag import AFFORDANCES, OPERATIONS

EXAMPLES = Path(__file__).parent.parent / "examples"


def _listing(name: str) -> list[AffordanceSite]:
    return strategy_affordances({"strategy.py": (EXAMPLES / name / "strategy.py").read_text()})


def _by_site(sites: list[AffordanceSite]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for site in sites:
        found.setdefault(site.site, set()).add(site.affordance)
    return found


def test_the_bundled_strategies_read_right() -> None:
    finance = _by_site(_listing("finance_factors"))
    weights = [site for site in finance if site.startswith("strategy.py:WEIGHTS[")]
    assert len(weights) == 12 and all(finance[site] == {"weight_vector"} for site in weights)
    assert finance["strategy.py:THRESHOLD"] == {"threshold"}
    assert finance["strategy.py:LONG_ONLY"] == {"switch"}
    assert not any("FACTORS" in site for site in finance)  # pinned with `# swarm: fixed`

    ranking = _by_site(_listing("search_ranking"))
    assert ranking['strategy.py:WEIGHTS["url_depth"]'] == {"weight_vector"}  # not a loop bound
    assert ranking["strategy.py:NORMALIZE"] == ranking["strategy.py:LOG_COUNTS"] == {"switch"}
    assert ranking["strategy.py:COUNT_FEATURES[0]"] == {"feature_set"}

    training = _by_site(_listing("tiny_training"))
    assert training["strategy.py:LEARNING_RATE"] == {"learning_rate"}
    assert training["strategy.py:EPOCHS"] == {"loop_bound"}
    assert training["strategy.py:HIDDEN"] == {"capacity"}
    assert training["strategy.py:L2"] == {"regularization"}
    assert training["strategy.py:INPUTS[2]"] == {"feature_set"}
    assert not any("SEED" in site for site in training)

    copy = _by_site(_listing("landing_copy"))
    assert copy["strategy.py:SECTIONS"] == {"sequence"}  # "rendered in this order"


def test_operations_and_affordances_are_the_shared_vocabulary() -> None:
    for example in sorted(EXAMPLES.iterdir()):
        if (example / "strategy.py").exists():
            for site in _listing(example.name):
                assert site.affordance in AFFORDANCES
                assert site.operations and set(site.operations) <= set(OPERATIONS)
                assert site.site.startswith("strategy.py:") and len(site.site) <= 200


def _as_mutator_sees_it(text: str) -> set[tuple[str, str, str]]:
    return {
        (site.site, site.affordance, OPERATIONS_OF[site.kind])
        for site in collect_sites("strategy.py", text)
    }


def _as_listed(text: str) -> set[tuple[str, str, str]]:
    return {
        (site.site, site.affordance, operation)
        for site in strategy_affordances({"strategy.py": text})
        for operation in site.operations
    }


TRICKY = textwrap.dedent(
    """\
    PARAMS = {"lr": 0.1, "epochs": 5, "momentum": 0.9}
    HIDDEN_SIZES = [64, 32]
    ORDER = ["a", "b", "a"]
    MIXED = [1, "x", True]
    PINNED = [1.0, 2.0]  # swarm: fixed
    KEEP = {"alpha": 1.0, **PARAMS}


    def score(x, threshold=0.5, *, step_size=0.01, seed=3):
        total = 0.3 * x + 2 - (x - 1)
        return total ** 2 + 2 ** x + 1.5.real if total > threshold else -x


    class Model:
        dropout = 0.2
        use_bias = False
    """
)


def test_the_listing_is_exactly_the_offline_mutators_sites() -> None:
    for example in sorted(EXAMPLES.iterdir()):
        if (example / "strategy.py").exists():
            text = (example / "strategy.py").read_text()
            assert _as_listed(text) == _as_mutator_sees_it(text), example.name
    assert _as_listed(TRICKY) == _as_mutator_sees_it(TRICKY)
    sites = _by_site(strategy_affordances({"strategy.py": TRICKY}))
    assert sites["strategy.py:PARAMS[\"lr\"]"] == {"learning_rate"}
    assert sites["strategy.py:PARAMS[\"epochs\"]"] == {"loop_bound"}
    assert sites["strategy.py:HIDDEN_SIZES"] == {"capacity"}
    assert sites["strategy.py:ORDER"] == {"sequence"}
    assert sites["strategy.py:score(threshold)"] == {"threshold"}
    assert sites["strategy.py:score(step_size)"] == {"learning_rate"}
    assert sites["strategy.py:total"] == {"term", "constant"}
    assert sites["strategy.py:dropout"] == {"regularization"}
    assert sites["strategy.py:use_bias"] == {"switch"}
    assert not any("PINNED" in site or "seed" in site for site in sites)


def test_the_listing_is_deterministic_and_ordered_by_path() -> None:
    files = {
        "b.py": "RATE = 0.1\n",
        "a.py": "FLAG = True\n",
        "copy.md": "# Offer\nBuy now.\n\nSecond block.\n",
        "broken.py": "def (:\n",
    }
    first = strategy_affordances(files)
    assert first == strategy_affordances(dict(reversed(files.items())))
    assert [(site.path, site.site, site.affordance) for site in first] == [
        ("a.py", "a.py:FLAG", "switch"),
        ("b.py", "b.py:RATE", "constant"),
        ("copy.md", "copy.md:Offer", "text_section"),
        ("copy.md", "copy.md:paragraph 1", "text_section"),
    ]


def test_names_are_read_word_by_word() -> None:
    assert name_affordance("learningRate") == "learning_rate"
    assert name_affordance("MAX_ITER") == "loop_bound"
    assert name_affordance("n_estimators") == "capacity"
    assert name_affordance("weight_decay") == "regularization"
    assert name_affordance("WEIGHTS", scalar=False) == "weight_vector"
    assert name_affordance("WEIGHT") is None  # a scalar weight is just a constant
    assert name_affordance("flr_threshold_count") == "threshold"
    assert name_affordance("blur") is None  # words, not substrings
    assert text_sections("## Why\n\ntext\n\n\n\nmore") == ["Why", "paragraph 1", "paragraph 2"]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_bounded_listing_without_crashing(text: str) -> None:
    for path in ("strategy.py", "notes.md"):
        sites = strategy_affordances({path: text})
        assert all(len(site.site) <= 200 for site in sites)
