"""A strategy that exits around the driver gets no score (issue 8 finding 7a): only a turn the
driver itself ends (EXIT_DONE, a code WASI's proc_exit cannot produce) carries a result.

The attacks run on the old, fixed-input faster_code, where writing the right answers as the
result line and exiting once scored `ok` at 4.9 M fuel (an honest sieve: 9.1 M)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.problem import load_package
from research_dag import Problem
from sandbox import Evaluator, Runtime

FIXED = Path(__file__).parent / "fixtures" / "faster_code_fixed"
MARKER = "\\x1eswarm-result "
# The evaluator fixture is shared by every example on purpose: it holds no per-example state.
SHARED_FIXTURE = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def fixed() -> Problem:
    return load_package(FIXED)


@pytest.fixture
def evaluator(runtime: Runtime, fixed: Problem) -> Iterator[Evaluator]:
    with Evaluator(runtime, fixed) as evaluator:
        yield evaluator


def answers(problem: Problem) -> str:
    return json.dumps(json.loads(problem.files["data/private/expected.json"]),
                      separators=(",", ":"))


def write_result(problem: Problem) -> str:
    """Python that writes the right answers as the driver's result line, straight to fd 1."""
    return f"os.write(1, b'{MARKER}' + {answers(problem)!r}.encode() + b'\\n')"


def test_marker_then_os_exit_is_invalid_output(evaluator: Evaluator, fixed: Problem) -> None:
    """The original attack: the result line, then os._exit(0), at import."""
    outcome = evaluator.evaluate({"strategy.py": (
        f"import os\n{write_result(fixed)}\nos._exit(0)\n\ndef solve(public_dir):\n    return []\n"
    )})
    assert (outcome.status, outcome.score, outcome.details) == (
        "invalid_output", None, {"failed_phase": 1})
    assert outcome.stderr_tail.endswith(
        "[sandbox] no result: the strategy ended the interpreter itself (os._exit(0)) instead "
        "of returning from its entry point")


@pytest.mark.parametrize("where", ["import", "solve"])
@pytest.mark.parametrize("how", ["sys.exit(0)", "sys.exit()", "raise SystemExit(0)"])
def test_marker_then_sys_exit_is_invalid_output(
    evaluator: Evaluator, fixed: Problem, where: str, how: str
) -> None:
    attack = f"{write_result(fixed)}\n{how}"
    if where == "import":
        source = f"import os, sys\n{attack}\n\ndef solve(public_dir):\n    return []\n"
    else:
        body = attack.replace("\n", "\n    ")
        source = f"import os, sys\n\ndef solve(public_dir):\n    {body}\n"
    outcome = evaluator.evaluate({"strategy.py": source})
    assert (outcome.status, outcome.score) == ("invalid_output", None)
    assert "no result: the strategy exited (exit code 0) instead of returning from solve()" in (
        outcome.stderr_tail)


def test_the_done_code_cannot_be_forged(evaluator: Evaluator, fixed: Problem) -> None:
    """Exiting with the driver's own code: proc_exit refuses it, and SystemExit is caught by a
    handler that runs no strategy code (a `write` planted on stderr, a `code` property)."""
    hard = evaluator.evaluate({"strategy.py": (
        f"import os\n{write_result(fixed)}\nos._exit(208)\n\ndef solve(d):\n    return []\n")})
    assert (hard.status, hard.score) == ("crash", None)
    soft = evaluator.evaluate({"strategy.py": (
        "import os, sys\n\n"
        "def boom(*args):\n    raise SystemExit(208)\n\n"
        "class Exit(SystemExit):\n    code = property(boom)\n\n"
        f"def solve(public_dir):\n    {write_result(fixed)}\n"
        "    sys.stderr.write = boom\n    sys.__stderr__.write = boom\n    raise Exit(208)\n")})
    assert (soft.status, soft.score) == ("crash", None)
    assert soft.stderr_tail.endswith(
        "no result: the strategy exited (exit code 208) instead of returning from solve()\n\n"
        "[sandbox] exit code 1")


def test_returning_normally_after_writing_a_marker_scores_the_returned_value(
    evaluator: Evaluator, fixed: Problem
) -> None:
    """A line written to fd 1 before returning is harmless: the driver's line comes last."""
    outcome = evaluator.evaluate({"strategy.py": (
        f"import os\n\ndef solve(public_dir):\n    {write_result(fixed)}\n    return []\n")})
    assert (outcome.status, outcome.details["error"]) == ("invalid", "expected one pair per range")


@settings(max_examples=25, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(code=st.integers(min_value=-300, max_value=300),
       exit_call=st.sampled_from(["sys.exit", "os._exit", "raise SystemExit"]),
       at_import=st.booleans())
def test_no_exit_ever_scores(
    evaluator: Evaluator, fixed: Problem, code: int, exit_call: str, at_import: bool
) -> None:
    """Whatever code, however the strategy exits after writing the right answers: never ok."""
    attack = f"{write_result(fixed)}\n{exit_call}({code})"
    if at_import:
        source = f"import os, sys\n{attack}\n\ndef solve(d):\n    return []\n"
    else:
        source = "import os, sys\n\ndef solve(d):\n    " + attack.replace("\n", "\n    ") + "\n"
    outcome = evaluator.evaluate({"strategy.py": source})
    assert outcome.status in ("invalid_output", "crash") and outcome.score is None
