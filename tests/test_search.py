"""Model-based search (issue 14): structures and knobs, observations from records, the model's
proposals (valid, one named change, deterministic), the bandit over families, crash-site
learning and a package's fixed sites."""

from __future__ import annotations

import random
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.mutators import (
    FAMILY_NAMES,
    MODEL_KINDS,
    MutationContext,
    MutationFailed,
    OfflineMutator,
    Search,
    family_of,
)
from node.mutators.memory import MODEL, PERTURB, STRUCTURAL
from node.mutators.model import knob_range
from node.mutators.structure import shape_of
from node.problem import PackageError, fixed_sites, load_package
from playbook import parse
from research_dag import Change, Experiment, Metric, Outcome, Problem

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SOURCE = """RATE = 0.1
DEPTH = 4
WEIGHTS = [1.0, 2.0, -0.5]
LIMIT = 7  # swarm: fixed
SEED = 3


def solve(x):
    return sum(w * v for w, v in zip(WEIGHTS, x)) * RATE + DEPTH + LIMIT + SEED
"""


def problem_for(source: str = SOURCE, manifest: str = "") -> Problem:
    files = {"strategy.py": source.encode()}
    if manifest:
        files["problem.toml"] = manifest.encode()
    return Problem(name="toy", statement="A toy.", metric=Metric(name="s", direction="maximize"),
                   mutable=["strategy.py"], files=files)


def with_values(values: list[float]) -> str:
    rate, depth, *weights = values
    return SOURCE.replace("RATE = 0.1", f"RATE = {rate!r}").replace(
        "DEPTH = 4", f"DEPTH = {round(depth)}").replace(
        "[1.0, 2.0, -0.5]", "[" + ", ".join(repr(w) for w in weights) + "]")


def toy_score(values: list[float]) -> float:
    rate, depth, a, b, c = values
    return -((rate - 0.3) ** 2) * 10 - abs(depth - 6) - (a - 2) ** 2 - b**2 - (c + 1) ** 2


def experiment(problem: Problem, source: str, score: float | None, n: int,
               parent: str | None = None, kind: str = "perturb_constant",
               changes: list[Change] | None = None, author: str = "me") -> Experiment:
    outcome = Outcome(status="ok", score=score) if score is not None else Outcome(status="crash")
    return Experiment.model_validate({
        "problem": problem.id, "strategy": {"strategy.py": source},
        "outcome": outcome, "author": author, "created_ms": n,
        "parent": parent, "mutation_kind": kind if parent else "baseline",
        "mutator": "offline" if parent else "baseline", "changes": changes,
    }, strict=False)


def fed_search(observations: int, seed: int = 0) -> tuple[Search, Problem, Experiment]:
    problem = problem_for()
    search = Search(problem)
    base = experiment(problem, SOURCE, toy_score([0.1, 4, 1.0, 2.0, -0.5]), 0)
    search.observe(base)
    rng = random.Random(seed)
    for n in range(observations):
        values = [rng.uniform(0.01, 1.0), rng.randint(1, 16), rng.uniform(-4, 4),
                  rng.uniform(-8, 8), rng.uniform(-2, 2)]
        search.observe(experiment(problem, with_values(values), toy_score(values), n + 1,
                                  parent=base.id))
    return search, problem, base


def context(problem: Problem, search: Search | None, seed: int = 0) -> MutationContext:
    return MutationContext(problem=problem, best_files={"strategy.py": SOURCE}, best_score=None,
                           rng=random.Random(seed), search=search,
                           crashing=frozenset() if search is None else search.crashing(),
                           fixed_sites=() if search is None else search.fixed)


def test_structure_abstracts_numeric_literals_only() -> None:
    shape = shape_of({"strategy.py": SOURCE}, ["strategy.py"])
    assert shape is not None
    labels = [site.split(":", 1)[1] for site in shape.sites]
    assert labels == ["RATE", "DEPTH", "WEIGHTS[0]", "WEIGHTS[1]", "WEIGHTS[2]"]  # no pin, seed
    assert shape.values == (0.1, 4.0, 1.0, 2.0, -0.5)
    other = shape_of({"strategy.py": with_values([0.7, 9, 3.0, 0.0, 1.5])}, ["strategy.py"])
    assert other is not None and other.key == shape.key and other.values[0] == 0.7
    pruned = shape_of({"strategy.py": SOURCE.replace(", -0.5]", "]")}, ["strategy.py"])
    assert pruned is not None and pruned.key != shape.key


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=5, max_size=5))
def test_a_structure_key_ignores_every_value(values: list[float]) -> None:
    base = shape_of({"strategy.py": SOURCE}, ["strategy.py"])
    changed = shape_of({"strategy.py": with_values(values)}, ["strategy.py"])
    assert base is not None and changed is not None and changed.key == base.key


def test_model_proposal_is_one_named_valid_change_and_deterministic() -> None:
    first, problem, _ = fed_search(40)
    second, _, _ = fed_search(40)
    proposals = [OfflineMutator().propose_now(context(problem, search, seed=5))
                 for search in (first, second)]
    assert proposals[0] == proposals[1]
    model = None
    for seed in range(40):
        proposal = OfflineMutator().propose_now(context(problem, first, seed=seed))
        assert parse(proposal.files["strategy.py"]) is not None
        assert proposal.family in FAMILY_NAMES
        assert proposal.family == (family_of(proposal.mutation_kind, "offline") or "")
        if proposal.family == MODEL:
            model = proposal
    assert model is not None and model.mutation_kind in MODEL_KINDS
    assert len(model.changes) == 1 and model.changes[0].operation == "perturb"
    assert model.changes[0].site.split(":", 1)[1] in model.description
    changed = shape_of(model.files, ["strategy.py"])
    assert changed is not None
    assert sum(a != b for a, b in zip(changed.values, first.memory.shape(
        {"strategy.py": SOURCE}).values, strict=True)) == 1  # type: ignore[union-attr]


def test_a_retune_lists_each_knob_it_sets() -> None:
    search, problem, _ = fed_search(30)
    search.model.retune = 3
    search.families = (MODEL,)
    proposal = OfflineMutator().propose_now(context(problem, search, seed=1))
    assert proposal.mutation_kind == "model_retune" and len(proposal.changes) == 3
    assert proposal.description.startswith("retune ")
    assert proposal.description.count("->") == 3


def test_the_bandit_follows_measured_success() -> None:
    problem = problem_for()
    search = Search(problem)
    base = experiment(problem, SOURCE, 0.0, 0)
    search.observe(base)
    for n in range(60):  # model changes win, structural ones never do
        kind = "model_tune" if n % 2 else "prune_element"
        score = 1.0 if kind == "model_tune" else -1.0
        search.observe(experiment(problem, with_values([0.1 + n / 100, 4, 1, 2, -0.5]), score,
                                  n + 1, parent=base.id, kind=kind))
    counts = search.memory.family_counts()
    assert counts[MODEL] == (30, 30) and counts[STRUCTURAL] == (30, 0)
    first = [search.ranked(context(problem, search, seed))[0] for seed in range(50)]
    assert first.count(MODEL) > 40 and STRUCTURAL not in first


def test_sites_that_crash_are_learned_and_skipped() -> None:
    problem = problem_for()
    search = Search(problem)
    base = experiment(problem, SOURCE, 0.0, 0)
    search.observe(base)
    depth = Change(operation="perturb", affordance="loop_bound", site="strategy.py:DEPTH")
    for n in range(3):
        search.observe(experiment(problem, with_values([0.1, 5 + n, 1, 2, -0.5]), None, n + 1,
                                  parent=base.id, changes=[depth]))
    assert ("perturb", "strategy.py:DEPTH") in search.crashing()
    mutator = OfflineMutator()
    for seed in range(80):
        proposal = mutator.propose_now(context(problem, search, seed))
        assert all(not (c.operation == "perturb" and c.site == "strategy.py:DEPTH")
                   for c in proposal.changes)


def test_fixed_sites_from_the_manifest_are_never_changed() -> None:
    manifest = 'fixed_sites = ["WEIGHTS", "strategy.py:RATE"]\n'
    problem = problem_for(manifest=manifest)
    assert fixed_sites(problem) == ("strategy.py:WEIGHTS", "strategy.py:RATE")
    search = Search(problem, fixed=fixed_sites(problem))
    search.observe(experiment(problem, SOURCE, 0.0, 0))
    for seed in range(80):
        proposal = OfflineMutator().propose_now(context(problem, search, seed))
        sites = [c.site for c in proposal.changes]
        assert not any(s == "strategy.py:RATE" or s.startswith("strategy.py:WEIGHTS")
                       for s in sites), sites


def test_a_package_names_its_fixed_sites(tmp_path: Path) -> None:
    package = tmp_path / "ff"
    shutil.copytree(EXAMPLES / "finance_factors", package)
    manifest = package / "problem.toml"
    text = manifest.read_text()
    manifest.write_text('fixed_sites = ["THRESHOLD"]\n' + text)
    assert fixed_sites(load_package(package)) == ("strategy.py:THRESHOLD",)
    manifest.write_text('fixed_sites = "THRESHOLD"\n' + text)
    with pytest.raises(PackageError, match="fixed_sites must be a list"):
        load_package(package)


@settings(max_examples=80, deadline=None)
@given(st.text(string.printable, max_size=200))
def test_a_hostile_manifest_never_breaks_fixed_sites(manifest: str) -> None:
    sites = fixed_sites(problem_for(manifest=manifest or " "))
    assert all(site.startswith("strategy.py:") for site in sites)


def test_knob_ranges_hold_their_anchor() -> None:
    shape = shape_of({"strategy.py": SOURCE}, ["strategy.py"])
    assert shape is not None
    for knob, value in zip(shape.knobs, shape.values, strict=True):
        low, high, _ = knob_range(knob, value)
        assert low <= value <= high and low < high
    weight = shape.knobs[2]
    assert knob_range(weight, 1.0)[0] < 0  # a weight may change sign or vanish


def test_peers_observations_feed_the_model_and_families_exclude_llm_changes() -> None:
    search, problem, base = fed_search(5)
    before = sum(len(s.observations) for s in search.memory.structures.values())
    peer = experiment(problem, with_values([0.3, 6, 2.0, 0.0, -1.0]), 0.0, 99, parent=base.id,
                      author="peer")
    search.observe(peer)
    search.observe(peer)  # the same record again: observed once
    after = sum(len(s.observations) for s in search.memory.structures.values())
    assert after == before + 1
    assert family_of("rewrite_loop", "anthropic") is None
    assert family_of("perturb_constant") == PERTURB
    assert family_of("structural:prune_element+toggle_bool") == STRUCTURAL


def test_optuna_is_imported_only_when_a_model_proposes() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from node.cli import app\n"
        "import node.mutators, node.loop\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "print('optuna' in sys.modules, 'numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "False"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.integers(-10**15, 10**15),
                          st.floats(-1e15, 1e15, allow_nan=False, allow_infinity=False)),
                min_size=1, max_size=6),
       st.integers(0, 2**32))
def test_model_proposals_on_any_literals_are_valid_strategies(values: list[float],
                                                              seed: int) -> None:
    source = "".join(f"K{i} = {value!r}\n" for i, value in enumerate(values))
    source += "\n\ndef solve(x):\n    return x\n"
    problem = problem_for(source)
    search = Search(problem, families=(MODEL,))
    rng = random.Random(seed)
    base = experiment(problem, source, 0.0, 0)
    search.observe(base)
    for n in range(12):
        changed = "".join(f"K{i} = {v * rng.uniform(0.5, 2)!r}\n" for i, v in enumerate(values))
        search.observe(experiment(problem, changed + source[source.index("\n\ndef"):],
                                  rng.random(), n + 1, parent=base.id))
    context = MutationContext(problem=problem, best_files={"strategy.py": source},
                              best_score=0.0, rng=random.Random(seed), search=search)
    try:
        proposal = OfflineMutator().propose_now(context)
    except MutationFailed:
        return  # nothing new to propose (a knob range of one value, all tried)
    assert parse(proposal.files["strategy.py"]) is not None


def combined_search() -> tuple[Search, Problem, Experiment]:
    """A round as a swarm sees it: two peers improved on the same parent by different knobs
    (RATE, DEPTH); the first became the best."""
    problem = problem_for()
    search = Search(problem)
    values = [0.1, 4, 1.0, 2.0, -0.5]
    base = experiment(problem, SOURCE, toy_score(values), 0)
    search.observe(base)
    rate = [0.3, *values[1:]]
    depth = [values[0], 6, *values[2:]]
    best = experiment(problem, with_values(rate), toy_score(rate), 1, parent=base.id,
                      author="a")
    search.observe(best)
    search.observe(experiment(problem, with_values(depth), toy_score(depth), 2, parent=base.id,
                              author="b"))
    return search, problem, best


def test_a_peers_improving_move_from_the_same_parent_is_added_to_the_best() -> None:
    both = with_values([0.3, 6, 1.0, 2.0, -0.5])
    combined = 0
    for seed in range(60):
        made = []
        for search, problem, best in (combined_search(), combined_search()):
            made.append(OfflineMutator().propose_now(MutationContext(
                problem=problem, best_files=dict(best.strategy), best_score=best.outcome.score,
                rng=random.Random(seed), search=search)))
        assert made[0] == made[1]  # the seed and the records decide
        if made[0].files["strategy.py"] == both:
            combined += 1
            assert made[0].family == MODEL and made[0].mutation_kind in MODEL_KINDS
            assert made[0].description.startswith("add an improving move")
            assert [change.site.split(":", 1)[1] for change in made[0].changes] == ["DEPTH"]
    # One move, two evaluations from its parent: each node adds it with chance 1/2, so that
    # about one of the two tries it, not both.
    assert 15 <= combined <= 45


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.floats(-3, 3, allow_nan=False)),
                min_size=1, max_size=12))
def test_a_solo_chain_of_bests_never_combines(moves: list[tuple[int, float]]) -> None:
    """A solo run's improvements are its successive bests: no move is left to add."""
    problem = problem_for()
    search = Search(problem)
    values = [0.1, 4.0, 1.0, 2.0, -0.5]
    parent = experiment(problem, SOURCE, toy_score(values), 0)
    search.observe(parent)
    for n, (index, step) in enumerate(moves, start=1):
        values = list(values)
        values[index] = max(0.01, values[index] + step) if index < 2 else values[index] + step
        child = experiment(problem, with_values(values), toy_score(values), n, parent=parent.id)
        search.observe(child)
        if problem.metric.better(toy_score(values), parent.outcome.score):
            parent = child
        else:
            values = [float(v) for v in shape_of(dict(parent.strategy),  # type: ignore[union-attr]
                                                 ["strategy.py"]).values]
    for seed in range(5):
        proposal = OfflineMutator().propose_now(MutationContext(
            problem=problem, best_files=dict(parent.strategy), best_score=parent.outcome.score,
            rng=random.Random(seed), search=search))
        assert not proposal.description.startswith("add an improving move")


def test_several_peers_moves_are_also_tried_together() -> None:
    """Three winners from one parent (RATE: the best; DEPTH; WEIGHTS[0]): besides each move,
    one option sets both remaining moves at once, a retune listing each knob."""
    problem = problem_for()
    values = [0.1, 4, 1.0, 2.0, -0.5]
    together = with_values([0.3, 6, 2.0, 2.0, -0.5])
    seen: set[str] = set()
    for seed in range(80):
        search = Search(problem)
        base = experiment(problem, SOURCE, toy_score(values), 0)
        search.observe(base)
        best = None
        for n, (author, changed) in enumerate(
                (("a", [0.3, *values[1:]]), ("b", [0.1, 6, *values[2:]]),
                 ("c", [0.1, 4, 2.0, *values[3:]])), start=1):
            made = experiment(problem, with_values(changed), toy_score(changed), n,
                              parent=base.id, author=author)
            search.observe(made)
            best = best or made
        assert best is not None
        proposal = OfflineMutator().propose_now(MutationContext(
            problem=problem, best_files=dict(best.strategy), best_score=best.outcome.score,
            rng=random.Random(seed), search=search))
        if proposal.description.startswith("add an improving move"):
            seen.add(proposal.files["strategy.py"])
            if proposal.files["strategy.py"] == together:
                assert proposal.mutation_kind == "model_retune" and len(proposal.changes) == 2
    assert seen == {together, with_values([0.3, 6, 1.0, 2.0, -0.5]),
                    with_values([0.3, 4, 2.0, 2.0, -0.5])}


def test_a_win_the_noise_gate_did_not_keep_is_no_win_of_its_family() -> None:
    """On a noise-gated problem a better mean "within noise" is discarded by the loop; the
    bandit counted it as its family's win all the same (tsp_heuristic's model tunes)."""
    problem = problem_for()
    search = Search(problem)
    base = experiment(problem, SOURCE, 0.0, 0)
    search.observe(base)
    better = experiment(problem, with_values([0.2, 4, 1, 2, -0.5]), 1.0, 1, parent=base.id,
                        kind="model_tune")
    search.observe(better)
    assert search.memory.family_counts()[MODEL] == (1, 1.0)
    search.memory.rejected(better.id)
    assert search.memory.family_counts()[MODEL] == (1, 0.0)
    search.memory.rejected("no such experiment")  # nothing else changes
    assert search.memory.family_counts()[MODEL] == (1, 0.0)
