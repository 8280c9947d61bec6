"""Heuristic packages (issue 15): a fixed harness drives the strategy's function over instances
drawn per candidate, one sandbox run per instance under its own fuel slice; nothing a strategy
prints, raises or returns reaches a published record; the evaluator re-checks every result."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.problem import PackageError, baseline_files, load_package
from research_dag import Experiment, Problem, encode_record
from sandbox import Evaluator, Runtime, is_heuristic
from sandbox.evaluation import inputs_seed
from sandbox.heuristic import WITHHELD, error_summary

FIXTURE = Path(__file__).parent / "fixtures" / "heuristic_leak"
NEAREST = "\n".join([
    "    x, y = points[current]",
    "    return [-math.hypot(points[c][0] - x, points[c][1] - y) for c in unvisited]",
])
# Each tries to get the instances' cities into something published: printed, raised, exited
# with, returned through a replaced harness (the careless evaluator then echoes them in a text
# detail and in its error), written to a file, or named as an exception class.
LEAKS = {
    "prints": f"""
import math, os, sys
def priority(current, unvisited, points, tour):
    print(points)
    print(points, file=sys.stderr)
    sys.__stdout__.write(repr(points))
    os.write(2, repr(points).encode())
{NEAREST}
""",
    "raises": """
def priority(current, unvisited, points, tour):
    raise ValueError(repr(points))
""",
    "names_an_exception": """
def priority(current, unvisited, points, tour):
    raise type("Leak_" + repr(points[0][0])[2:12], (Exception,), {})()
""",
    "exits": """
import os
def priority(current, unvisited, points, tour):
    os._exit(int(points[0][0] * 100))
""",
    "returns_the_cities": """
import sys
import instances
def priority(current, unvisited, points, tour):
    return [0.0] * len(unvisited)
def _leak(function, instance):
    return instances.points(instance)
sys.modules["harness"].run = _leak
""",
    "writes": f"""
import math
def priority(current, unvisited, points, tour):
    for path in ("/data/public/leak.txt", "/strategy/leak.txt", "/tmp/leak.txt"):
        try:
            with open(path, "w") as stream:
                stream.write(repr(points))
        except OSError:
            pass
{NEAREST}
""",
}


@pytest.fixture(scope="module")
def leak_problem() -> Problem:
    return load_package(FIXTURE)


def _generator(problem: Problem) -> ModuleType:
    spec = importlib.util.spec_from_file_location("fixture_instances", FIXTURE / "instances.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _secrets(problem: Problem, files: dict[str, str]) -> list[str]:
    """Eight digits of every coordinate the candidate's instances hold."""
    generator = _generator(problem)
    drawn = generator.generate(inputs_seed(problem.id, files), "/data/public")
    found = []
    for instance in drawn:
        for x, y in generator.points(instance):
            found += [repr(x)[2:10], repr(y)[2:10]]
    return found


def test_the_fixture_is_a_heuristic_package(leak_problem: Problem) -> None:
    assert is_heuristic(leak_problem)


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_no_published_record_carries_the_instances(
    runtime: Runtime, leak_problem: Problem, leak: str
) -> None:
    files = {"strategy.py": LEAKS[leak]}
    with Evaluator(runtime, leak_problem) as evaluator:
        outcome = evaluator.evaluate(files)
    record = Experiment(problem=leak_problem.id, strategy=files, outcome=outcome)
    published = encode_record(record).decode("latin-1") + outcome.model_dump_json()
    secrets = _secrets(leak_problem, files)
    assert len(secrets) == 2 * (12 + 15)
    assert [s for s in secrets if s in published] == []
    assert all(isinstance(value, int | float) for value in outcome.details.values())
    expected = {
        "prints": "ok", "raises": "crash", "names_an_exception": "crash", "exits": "crash",
        "returns_the_cities": "invalid_output", "writes": "ok",
    }
    assert outcome.status == expected[leak], outcome
    if outcome.status == "ok":
        assert outcome.stderr_tail == "" and outcome.score is not None
    else:
        assert WITHHELD in outcome.stderr_tail or "withheld" in outcome.stderr_tail


def test_a_failure_names_the_builtin_exception_and_the_line_only(
    runtime: Runtime, leak_problem: Problem
) -> None:
    with Evaluator(runtime, leak_problem) as evaluator:
        raised = evaluator.evaluate({"strategy.py": LEAKS["raises"]})
        named = evaluator.evaluate({"strategy.py": LEAKS["names_an_exception"]})
    assert "instance 1 of 2: ValueError at strategy.py line 3;" in raised.stderr_tail
    assert raised.details == {"failed_phase": 1, "failed_instance": 0, "instances": 2}
    assert "instance 1 of 2: an error at strategy.py line 3;" in named.stderr_tail


def test_the_drivers_own_messages_are_published(runtime: Runtime, leak_problem: Problem) -> None:
    with Evaluator(runtime, leak_problem) as evaluator:
        missing = evaluator.evaluate({"strategy.py": "def solve(public_dir):\n    return 1\n"})
    assert missing.status == "invalid_output"
    assert "instance 1 of 2: the strategy defines no callable 'priority';" in missing.stderr_tail


def test_a_slow_call_costs_its_instances_slice_not_the_evaluation(
    runtime: Runtime, leak_problem: Problem
) -> None:
    slow = "\n".join([
        "import math",
        "def priority(current, unvisited, points, tour):",
        "    while len(points) == 15:  # the second instance: one call never returns",
        "        pass",
        NEAREST,
    ])
    with Evaluator(runtime, leak_problem) as evaluator:
        outcome = evaluator.evaluate({"strategy.py": slow})
        honest = evaluator.evaluate(baseline_files(leak_problem))
    assert outcome.status == "out_of_fuel"
    assert outcome.details["failed_instance"] == 1
    share = outcome.details["instance_fuel"]
    # Weights n^2 + 200: the second instance's share is 425 / 769 of the budget.
    assert share == 2_000_000_000 * 425 // 769
    assert share < outcome.strategy_fuel < share + honest.strategy_fuel
    assert "used up its fuel slice" in outcome.stderr_tail


def test_the_evaluator_sees_every_instance_and_the_same_draw_on_replay(
    runtime: Runtime, leak_problem: Problem
) -> None:
    with Evaluator(runtime, leak_problem) as evaluator:
        first = evaluator.evaluate(baseline_files(leak_problem))
        again = evaluator.evaluate(baseline_files(leak_problem))
    assert first == again and first.status == "ok"
    assert first.details == {"tours": 2}  # the evaluator's text detail (an echo) is dropped


def _variant(tmp_path: Path, **files: str) -> Path:
    target = tmp_path / "package"
    shutil.copytree(FIXTURE, target)
    for name, text in files.items():
        (target / name.replace("__", "/").replace("_py", ".py")).write_text(text)
    return target


def test_a_generator_without_instances_is_the_packages_failure(
    runtime: Runtime, tmp_path: Path
) -> None:
    target = _variant(tmp_path, instances_py="def generate(seed, public_dir):\n    return []\n")
    problem = load_package(target)
    with Evaluator(runtime, problem) as evaluator:
        outcome = evaluator.evaluate(baseline_files(problem))
    assert outcome.status == "invalid" and outcome.strategy_fuel == 0
    assert "generator must return a list of 1 to 64 instances" in outcome.stderr_tail


def test_the_loader_wants_a_run_function_and_a_generator(tmp_path: Path) -> None:
    target = _variant(tmp_path, harness_py="def weight(instance):\n    return 1\n")
    manifest = (target / "problem.toml").read_text()
    (target / "problem.toml").write_text(manifest.replace('generator = "instances.py"\n', ""))
    with pytest.raises(PackageError) as caught:
        load_package(target)
    assert caught.value.defects == [
        "harness.py must define a top-level function run(...)",
        "problem.toml: a heuristic package (harness.py) needs a generator: its instances are "
        "drawn per candidate",
    ]


SUMMARY = re.compile(r"^(an error|[A-Z][A-Za-z]{1,60})( at [A-Za-z0-9_.-]{1,200} line \d{1,7})?$")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2_000), st.text(max_size=300))
def test_an_error_summary_is_a_builtin_name_and_a_line_at_most(stderr: bytes, tail: str) -> None:
    strategy = {"strategy.py": "x = 1\n" * 50}
    summary = error_summary(stderr + tail.encode("utf-8", "replace"), strategy)
    assert SUMMARY.match(summary), summary


def test_an_error_summary_of_a_real_traceback() -> None:
    stderr = (
        b'Traceback (most recent call last):\n  File "/harness/harness.py", line 9, in run\n'
        b'  File "/strategy/strategy.py", line 4, in priority\nZeroDivisionError: 0.7342 / 0\n'
    )
    strategy = {"strategy.py": "a\nb\nc\nd\n"}
    assert error_summary(stderr, strategy) == "ZeroDivisionError at strategy.py line 4"
    assert error_summary(stderr.replace(b"line 4", b"line 99"), strategy) == "ZeroDivisionError"
    assert error_summary(b"Leak_734218: x\n", strategy) == "an error"
