"""Red team of the newest code (2026-12-07c, docs/security.md): what a problem author, a
strategy or a peer writes cannot make the model's knob parser or the offline operators take
hours, make every model or offline proposal one the loop refuses, or make a node hold unbounded
held experiments."""

from __future__ import annotations

import ast
import hashlib
import random
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from node.cli import app
from node.llm import EditingSession, ModelGateway, StandinProvider
from node.model_evaluations import ModelEvaluations
from node.mutators import MutationContext, MutationFailed, OfflineMutator, Proposal
from node.mutators.memory import PENDING_CHARS, SearchMemory
from node.mutators.model import ModelSearch
from node.mutators.patch import make_diff
from node.mutators.sites import collect_sites
from node.mutators.structure import MAX_KNOBS, MAX_LITERAL, MAX_MAGNITUDE, shape_of
from node.problem import load_package
from node.spot_retries import MAX_REMEMBERED, SpotRetries, Unchecked
from node.trust import ModelCheck, outcomes_match
from playbook import (
    SourceFile,
    StrategyWalk,
    Within,
    number_affordance,
    number_value,
    site_label,
    size_ranks,
    strategy_affordances,
)
from playbook.power import PLAN, size
from research_dag import MAX_SOURCE, Experiment, Metric, Outcome, Problem, Qualifier
from sandbox import Evaluator, Runtime
from tests.test_redteam_models import CODE_EVALUATE, CODE_STRATEGY, CODE_TOML, EDITS

PATH = "strategy.py"


def problem(source: str) -> Problem:
    return Problem(name="toy", statement="A toy.", metric=Metric(name="s", direction="maximize"),
                   mutable=[PATH], files={PATH: source.encode()})


def made(toy: Problem, files: dict[str, str], score: float, n: int,
         parent: Experiment | None = None, author: str = "me", diff: str = "") -> Experiment:
    return Experiment.model_validate({
        "problem": toy.id, "strategy": files, "outcome": Outcome(status="ok", score=score),
        "author": author, "created_ms": n, "parent": None if parent is None else parent.id,
        "mutation_kind": "perturb_constant" if parent else "baseline",
        "mutator": "offline" if parent else "baseline", "diff": diff,
    }, strict=False)


def test_a_256_kb_list_of_numbers_has_its_shape_at_once() -> None:
    """Each of a container's numbers measured the whole container again for its affordance:
    4,000 numbers took 5 s, a 256 KB list of 85,000 would have taken hours, in the event loop
    (every observed experiment's shape). Now under a second (the walk's own cost)."""
    source = "A = [" + "1, " * 85_000 + "]\n"
    assert len(source) <= MAX_SOURCE
    shape = shape_of({PATH: source}, [PATH])
    assert shape is not None and len(shape.knobs) == MAX_KNOBS
    assert {knob.affordance for knob in shape.knobs} == {"weight_vector"}


class _Reference(StrategyWalk):
    """The knobs as the walk defines them, each affordance computed afresh (the slow way)."""

    def __init__(self, src: SourceFile) -> None:
        super().__init__(src)
        self.found: list[tuple[int, str, str]] = []

    def on_number(self, node: ast.expr, label: str | None, within: Within | None,
                  wrap: bool) -> None:
        start, end = self.src.span(node)
        value = number_value(node)
        if value is not None and abs(value) <= MAX_MAGNITUDE and end - start <= MAX_LITERAL:
            self.found.append((start, site_label(PATH, label, self.src.line(start)),
                               number_affordance(label, within)))

    def on_switch(self, node: ast.Constant, label: str | None) -> None:
        start, _ = self.src.span(node)
        self.found.append((start, site_label(PATH, label, self.src.line(start)), "switch"))


_LITERALS = st.sampled_from([
    "1", "-2", "0.5", "-0.0", "5e-324", "1e15", "-1e15", "999999999999999", "1_000", "0x7f",
    "True", "False", "2.5e-100", "1." + "0" * 5000, "0." + "0" * 200 + "1", "-(  # x\n 3)",
    "1" + "_0" * 60, "10**400", "1e308", "1j", "'text'", "-True", "(2) ** 3", "1 .real",
])
_LINES = st.lists(st.tuples(st.sampled_from(["A", "WEIGHTS", "cfg['lr']", "x, y", "LIMITS"]),
                            st.lists(_LITERALS, min_size=1, max_size=6),
                            st.sampled_from(["[{}]", "({},)", "dict", "{}", "f({})"])),
                  min_size=1, max_size=12)


def _source(lines: list[tuple[str, list[str], str]]) -> str:
    out = ["cfg = {}\n\n\ndef f(*args):\n    return args\n\n\n"]
    for name, literals, shape in lines:
        if name == "x, y":
            out.append(f"x, y = {literals[0]}, {literals[-1]}\n")
        elif shape == "{}":
            out.append(f"{name} = {literals[0]}\n")
        elif shape == "dict":
            pairs = ", ".join(f"'k{i}': {literal}" for i, literal in enumerate(literals))
            out.append(f"{name} = {{{pairs}}}\n")
        else:
            out.append(f"{name} = {shape.format(', '.join(literals))}\n")
    return "".join(out)


@settings(max_examples=60, deadline=None)
@given(_LINES)
def test_knobs_are_the_walks_short_numbers_and_switches(lines: list[tuple[str, list[str], str]]
                                                        ) -> None:
    """The knobs are the walk's literals in source order, the first MAX_KNOBS, with the
    affordance the playbook names (now computed once per container), none longer than
    MAX_LITERAL characters."""
    source = _source(lines)
    reference = _Reference(SourceFile(PATH, source, ast.parse(source)))
    reference.run()
    shape = shape_of({PATH: source}, [PATH])
    assert shape is not None
    got = [(knob.start, knob.site, knob.affordance) for knob in shape.knobs]
    assert got == sorted(reference.found)[:MAX_KNOBS]
    assert all(len(knob.text) <= MAX_LITERAL for knob in shape.knobs)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_LITERALS, min_size=1, max_size=6), st.integers(0, 2**31))
def test_every_model_proposal_is_one_an_experiment_can_record(literals: list[str], seed: int
                                                              ) -> None:
    """A knob's text is quoted in the proposal's description: a float written in 5,000
    digits made every model proposal touching it past the record's 4,000 characters, refused
    by the loop each time it was proposed. Such a literal is no knob now."""
    source = "".join(f"K{i} = {literal}\n" for i, literal in enumerate(literals))
    toy = problem(source)
    memory = SearchMemory(toy)
    base = made(toy, {PATH: source}, 0.0, 0)
    memory.observe(base)
    shape = memory.shape({PATH: source})
    assert shape is not None
    model = ModelSearch("maximize", retune=3)
    for n in range(3):
        suggestion = model.suggest(memory, {PATH: source}, shape, random.Random(seed + n),
                                   lambda knob: True)
        if suggestion is None:
            continue
        Experiment.model_validate({  # the loop's own check (_unrecordable): the record's schema
            "problem": toy.id, "strategy": suggestion.files, "author": "me", "created_ms": 1,
            "outcome": Outcome(status="ok", score=1.0), "parent": base.id,
            "mutation_kind": suggestion.kind, "description": suggestion.description,
            "changes": list(suggestion.changes), "mutator": "offline",
        }, strict=False)
        memory.observe(made(toy, suggestion.files, float(n), n + 1, parent=base))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 40), st.integers(0, 2**31), st.integers(1, 4))
def test_no_model_proposal_outgrows_what_a_record_holds(slack: int, seed: int, retune: int
                                                        ) -> None:
    """On a best within a few characters of MAX_SOURCE a longer value (`1.0` -> `0.445786`)
    made a file past the bound: the loop refused it, the model proposed another, and a run
    on such a best stopped with `mutator_exhausted` (2 of 3 seeds within 80 iterations)."""
    head = "A = 1.0\nB = 2.0\nW = [1.0, 2.0, 3.0]\nFLAG = True\n"
    source = head + "#" * (MAX_SOURCE - slack - len(head) - 1) + "\n"
    toy = problem(source)
    memory = SearchMemory(toy)
    memory.observe(made(toy, {PATH: source}, 0.0, 0))
    shape = memory.shape({PATH: source})
    assert shape is not None and len(shape.knobs) == 6
    model = ModelSearch("maximize", retune=retune)
    for n in range(3):
        suggestion = model.suggest(memory, {PATH: source}, shape, random.Random(seed + n),
                                   lambda knob: True)
        assert suggestion is None or len(suggestion.files[PATH]) <= MAX_SOURCE


def test_no_model_proposal_has_a_diff_past_what_a_record_holds() -> None:
    """A knob on a 130,000-character line: every change to it makes a diff of both versions
    of the line (260,000 characters), past MAX_SOURCE; the loop refused each such suggestion
    and the model made it again (10 of 10). Now none is made; the other knob still moves."""
    long_line = "A = 1.0; B = 2.0  # " + "x" * 130_000 + "\n"
    source = long_line + "C = 3.0\n"
    toy = problem(source)
    memory = SearchMemory(toy)
    memory.observe(made(toy, {PATH: source}, 0.0, 0))
    shape = memory.shape({PATH: source})
    assert shape is not None and len(shape.knobs) == 3
    model = ModelSearch("maximize", retune=1)
    moved = []
    for seed in range(10):
        suggestion = model.suggest(memory, {PATH: source}, shape, random.Random(seed),
                                   lambda knob: True)
        if suggestion is not None:
            assert len(make_diff({PATH: source}, suggestion.files)) <= MAX_SOURCE
            moved.append(suggestion.files[PATH].splitlines()[0] == long_line.rstrip("\n"))
    assert moved and all(moved)  # only C: the long line never changes


FILES = [f"part{index}.py" for index in range(16)]
FILE_CHARS = 250_000


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, len(FILES)), st.booleans()), min_size=1, max_size=10))
def test_held_experiments_are_bounded_by_their_characters(held_sizes: list[tuple[int, bool]]
                                                          ) -> None:
    """Anyone's experiment is held until its author vouches: 2,048 of a stranger's, 16 files
    of 256 KB each, pinned up to 8 GB. Now the held strategies and diffs stay within
    PENDING_CHARS (the newest kept, even alone past it), and admitting one frees its share."""
    toy = Problem(name="toy", statement="A toy.",
                  metric=Metric(name="s", direction="maximize"), mutable=FILES,
                  files={path: b"A = 1.0\n" for path in FILES})
    memory = SearchMemory(toy)
    held: list[tuple[Experiment, int]] = []
    for n, (files, admitted) in enumerate(held_sizes):
        strategy = {path: f"A = {n}\n#" + "x" * (FILE_CHARS - 9) for path in FILES[:files]}
        experiment = made(toy, strategy, 1.0, n, author="stranger", diff="d" * FILE_CHARS)
        memory.hold(experiment)
        assert memory.files(experiment.id) == strategy  # the newest is always kept
        if admitted:  # its author vouches: data now, no longer held
            memory.admit(lambda e: e.id == experiment.id)  # noqa: B023 (called right here)
            assert memory.holds(experiment.id)
            continue
        held.append((experiment, sum(map(len, strategy.values())) + FILE_CHARS))
        kept = [chars for e, chars in held if memory.files(e.id) is not None]
        assert sum(kept) <= PENDING_CHARS or len(kept) == 1


@pytest.mark.parametrize("command", [["simulate"], ["run", "examples/finance_factors"],
                                     ["pose", "a statement"]])
def test_a_budget_that_caps_nothing_is_refused(command: list[str]) -> None:
    """`--max-cost nan` parsed, and no spending is ever >= nan: `swarm simulate` (fixed first)
    and `swarm run` ran with no money budget at all while the user had asked for one. One
    check on the shared options (node/cli/options.py) now refuses it, before anything runs."""
    for flag, value in (("--max-cost", "nan"), ("--max-cost", "-1"), ("--max-tokens", "-5")):
        shown = CliRunner(env={"COLUMNS": "200"}).invoke(app, [*command, flag, value])
        assert shown.exit_code == 2, shown.output
        assert f"'{flag}': must be a number >= 0" in shown.output, shown.output
        assert "round" not in shown.output and "iteration" not in shown.output


_COUNTS = st.sampled_from([0, 1, 3, 10**3, 10**9, 10**18])


@settings(max_examples=60, deadline=None)
@given(st.fractions(0, 1), st.fractions(0, 1), _COUNTS,
       st.integers(1, 10**18) | _COUNTS.filter(bool))
def test_a_test_plan_is_sized_for_any_count(base: Fraction, rate: Fraction, known: int,
                                            denominator: int) -> None:
    """Held: a hypothesis's plan reads counts this node derived (never a peer's numbers), and
    however large (10**18 attempts) or fine the rates, sizing it is at most `max_tries` exact
    tails of at most `max_tries` + 1 terms each: a plan or None, never a raise."""
    base = Fraction(round(base * denominator), denominator)
    planned = size(base, rate, known)
    if planned is not None:
        tries, power = planned
        assert PLAN.early_tests <= tries <= PLAN.max_tries and PLAN.min_power <= power <= 1
        assert rate > base


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * MAX_REMEMBERED), st.booleans()), max_size=60),
       st.integers(1, 6))
def test_spot_retries_remember_a_bounded_number_of_claims(steps: list[tuple[int, bool]],
                                                         attempts: int) -> None:
    """Held: a peer posting claim after claim whose checks cannot run pins at most
    MAX_REMEMBERED claims per kind (tries and given up); the oldest are forgotten."""
    retries = SpotRetries(attempts=attempts)
    why = Unchecked("timeout", "a checked evaluation ran out of time")
    for n in range(2 * MAX_REMEMBERED + attempts):  # a flood of distinct claims
        retries.failed(f"flood{n // attempts}", n, why)
    for claim, settled in steps:
        if settled:
            retries.settled(f"c{claim}")
        else:
            retries.failed(f"c{claim}", claim, why)
        assert len(retries._tries) <= MAX_REMEMBERED
        assert len(retries.given_up) <= MAX_REMEMBERED


_HOSTILE = st.sampled_from([
    "1.0", "-2", "0.5", "True", "1." + "0" * 5000, "0." + "0" * 3000 + "1", "9" * 4300,
    "-" + "9" * 4300, "0x" + "f" * 5000, "9" * 400, "1e308", "5e-324", "'text'", "a + b - c",
])
_NAMES = st.sampled_from(["A", "W", "x" * 5000, "cfg['" + "k" * 3000 + "']"])


def _hostile_source(lines: list[tuple[str, list[str], bool]], slack: int | None,
                    long_line: bool) -> str:
    """Hostile literals and names as scalars, lists and dicts; padded to `slack` characters
    under MAX_SOURCE, or with a 130,000-character string on the first line (a change on that
    line is a diff past MAX_SOURCE)."""
    out = ["a, b, c = 1, 2, 3\n"]
    for name, literals, listed in lines:
        if name.startswith("cfg"):
            out.insert(0, "cfg = {}\n")
        if listed:
            out.append(f"{name} = [{', '.join(literals)}]\n")
            out.append("D = {" + ", ".join(f"'k{i}': {v}" for i, v in enumerate(literals)) + "}\n")
        else:
            out.append(f"{name} = {literals[0]}\n")
    source = "".join(out)
    if long_line:
        source = "S = '" + "s" * 130_000 + "'; " + source
    if slack is not None and len(source) < MAX_SOURCE - slack - 1:
        source += "#" * (MAX_SOURCE - slack - len(source) - 1) + "\n"
    return source


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_NAMES, st.lists(_HOSTILE, min_size=1, max_size=4), st.booleans()),
                min_size=1, max_size=4),
       st.none() | st.integers(0, 40), st.booleans(), st.booleans(), st.integers(0, 2**31))
def test_no_offline_proposal_is_unrecordable(lines: list[tuple[str, list[str], bool]],
                                            slack: int | None, long_line: bool,
                                            structural: bool, seed: int) -> None:
    """The offline operators quoted a literal in full (a 5,000-digit float made 9 of 40
    proposals past the record's 4,000-character description), wrote files past MAX_SOURCE on a
    best at the bound (4-7 of 80 attempts refused by the loop, 3 seeds), raised on an int past
    Python's digit limit (`0x` and 5,000 digits: every proposal; `9` x 4,300 doubled) and on
    one past any float in a rescaled list. Now every proposal is one an experiment records, or
    the mutator says it has none (MutationFailed)."""
    source = _hostile_source(lines, slack, long_line)
    assert len(source) <= MAX_SOURCE
    toy = problem(source)
    mutator = OfflineMutator()
    rng = random.Random(seed)
    for _ in range(4):
        context = MutationContext(problem=toy, best_files={PATH: source}, best_score=0.0,
                                  rng=rng, structural=structural)
        try:
            proposal: Proposal = mutator.propose_now(context)
        except MutationFailed:
            continue
        Experiment.model_validate({  # the loop's own check (_unrecordable): the record's schema
            "problem": toy.id, "strategy": proposal.files, "author": "me", "created_ms": 1,
            "outcome": Outcome(status="ok", score=1.0), "diff": proposal.diff,
            "mutation_kind": proposal.mutation_kind, "description": proposal.description,
            "hypothesis": proposal.hypothesis, "changes": list(proposal.changes) or None,
            "mutator": "offline",
        }, strict=False)


def _size_rank_before(value: int | float | None, sizes: list[int | float]) -> Qualifier | None:
    """playbook.size_rank as it was, called per element (quadratic on a container)."""
    if value is None:
        return None
    if value == 0:
        return "zero"
    nonzero = [size for size in sizes if size != 0]
    low, high, size = min(nonzero), max(nonzero), abs(value)
    if low == high:
        return "tied"
    return "weakest" if size == low else "strongest" if size == high else "middle"


_NUMBERS = st.none() | st.integers(-5, 5) | st.floats(-3, 3, width=16) | st.sampled_from(
    [0, 0.0, -0.0, 5e-324, 10**400, -(10**400), 1e308])


@settings(max_examples=200, deadline=None)
@given(st.lists(_NUMBERS, max_size=12))
def test_a_containers_ranks_are_those_of_each_element_alone(values: list[int | float | None]
                                                            ) -> None:
    """Each element of a container was ranked against all of it (`size_rank` per element:
    a 40,000-number list took 60 s a proposal). Now the bounds are found once per container:
    the same ranks as before, element by element."""
    sizes = [abs(value) for value in values if value is not None]
    assert size_ranks(values, sizes) == [_size_rank_before(value, sizes) for value in values]


def test_a_40000_number_list_has_its_sites() -> None:
    """The offline sites and the playbook's listing of a 40,000-number list (one a line):
    found in time linear in the list (the per-element ranking made it 60 s a proposal)."""
    source = "A = {\n" + "".join(f"    'k{i}': {i % 7},\n" for i in range(20_000)) + "}\n"
    source += "W = [\n" + "".join(f"    {i % 5},\n" for i in range(20_000)) + "]\n"
    sites = collect_sites(PATH, source)
    zeroed = [site for site in sites if site.kind == "zero_constant"]
    assert len(zeroed) == 20_000 - 20_000 // 7 - 1 + 20_000 - 20_000 // 5
    assert {site.qualifier for site in zeroed} == {"weakest", "middle", "strongest"}
    listed = strategy_affordances({PATH: source})
    assert listed and all(site.path == PATH for site in listed)


def _spinning_liar(root: Path, fuel: int, wall_s: float) -> tuple[Problem, dict[str, str]]:
    """A `[model]` package of this budget, and a liar's strategy that spins on any first
    answer but the one its author edited into the transcript (EDITS[0])."""
    budget = f"fuel = {fuel}\nmemory_mb = 128\nwall_s = {wall_s}\n"
    (root / "problem.toml").write_text(CODE_TOML.replace(
        "fuel = 2_000_000_000\nmemory_mb = 128\nwall_s = 60\n", budget))
    (root / "strategy.py").write_text(CODE_STRATEGY.format(expected=""))
    (root / "evaluate.py").write_text(CODE_EVALUATE)
    for split in ("public", "private"):
        (root / "data" / split).mkdir(parents=True)
        (root / "data" / split / "x.txt").write_text(split)
    spin = CODE_STRATEGY.replace('raise RuntimeError("an answer its author did not edit in")',
                                 "while True: pass")
    expected = hashlib.sha256(EDITS[0].encode()).hexdigest()
    return load_package(root), {PATH: spin.format(expected=expected)}


@pytest.mark.parametrize(("fuel", "patient_wall_s", "disputed"), [
    (20_000_000_000, 60.0, True),  # the fuel runs out long before 60 s: a verdict
    (1_000_000_000_000, 3.0, False),  # a machine too slow for the fuel: no verdict
])
def test_a_liar_timing_out_on_every_fresh_answer_is_disputed_by_its_fuel(
    runtime: Runtime, tmp_path: Path, fuel: int, patient_wall_s: float, disputed: bool
) -> None:
    """A liar's strategy spinning on any answer but its edited one, on a budget whose wall
    clock (2 s) fires before its fuel is spent: every spot check ended `timeout`, no verdict,
    and the claim was given up after its retries, its liar never disputed (measured: fuel
    1e11, wall_s 3). Now the checked evaluation runs again with time for the whole fuel:
    `out_of_fuel`, the same on every machine, is a recorded win and the claim is disputed;
    a machine too slow even for that (the second case) still gives no verdict, so load never
    disputes anyone."""
    problem, files = _spinning_liar(tmp_path, fuel, 2)
    gateway = ModelGateway(StandinProvider())
    with Evaluator(runtime, problem) as evaluator:
        liar = EditingSession(gateway, problem, {0: EDITS[0]})
        claimed = evaluator.evaluate(files, liar)
        assert claimed.status == "ok", claimed.stderr_tail
        run = ModelEvaluations(evaluator, problem, gateway, patient_wall_s=patient_wall_s)
        check = run.verify(files, claimed, liar.transcript(), "me/claim")
    if disputed:
        assert isinstance(check, ModelCheck) and not check.match
        assert check.outcome.status == "out_of_fuel"
        assert check.outcome.strategy_fuel == fuel  # deterministic: the whole budget
        assert not outcomes_match(claimed, check.outcome)  # a consistent Verification
    else:
        assert check == Unchecked("timeout", "a checked evaluation ran out of time")
