"""Hostile strategies: each gets a precise outcome, and the host keeps working afterwards."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from research_dag import Budget, Problem
from sandbox import Evaluator, Runtime

MARKER = r"\x1eswarm-result "


@dataclass(frozen=True)
class Case:
    name: str
    body: str  # the body of solve(public_dir); may use os, sys, json
    status: str
    stderr: str = ""  # a substring the stderr tail must contain
    score: float | None = None
    header: str = ""  # module-level code before solve


CASES = [
    Case("read_host_file", "return open('/etc/passwd').read()", "crash", "FileNotFoundError"),
    Case(
        "read_private_labels",
        "return open('/data/private/labels.json').read()",
        "crash",
        "FileNotFoundError",
    ),
    Case(
        "read_the_evaluator",
        "return open('/evaluator/evaluate.py').read()",
        "crash",
        "FileNotFoundError",
    ),
    Case(
        "path_traversal",
        "return open(public_dir + '/../private/labels.json').read()",
        "crash",
        "Error",
    ),
    Case("write_outside_mounts", "open('/tmp/owned', 'w').write('x')", "crash", "Error"),
    Case(
        "write_into_read_only_mount",
        "open(public_dir + '/planted.py', 'w').write('x')",
        "crash",
        "Error",
    ),
    Case("plant_symlink", "os.symlink('/etc/passwd', public_dir + '/link')", "crash", "Error"),
    Case(
        "rename_in_mount",
        "os.rename(public_dir + '/info.json', public_dir + '/x.json')",
        "crash",
        "PermissionError",
    ),
    Case("list_directories", "return os.listdir(public_dir)", "crash", "PermissionError"),
    Case(
        "network",
        "import socket\n    socket.create_connection(('127.0.0.1', 80))",
        "crash",
        "Error",
    ),
    Case("subprocess", "import subprocess\n    subprocess.run(['ls'])", "crash", "Error"),
    Case("fork", "os.fork()", "crash", "Error"),
    Case(
        "threads",
        "import threading\n    threading.Thread(target=print).start()",
        "crash",
        "RuntimeError",
    ),
    Case("import_ctypes", "import ctypes\n    ctypes.CDLL(None)", "crash", "Error"),
    Case("infinite_loop", "while True:\n        pass", "out_of_fuel"),
    Case(
        "sleep_past_the_deadline",
        "import time\n    time.sleep(10_000)\n    return {'x': 3}",
        "ok",
        score=3.0,
    ),
    Case("memory_bomb", "return bytearray(2**30)", "out_of_memory"),
    Case(
        "memory_creep",
        "xs = []\n    while True:\n        xs.append(bytearray(1 << 20))",
        "out_of_memory",
    ),
    Case(
        "deep_recursion", "def f(n):\n        return f(n + 1)\n    f(0)", "crash", "RecursionError"
    ),
    Case(
        "recursion_past_the_wasm_stack",
        "sys.setrecursionlimit(10**7)\n    return json.loads('[' * 200_000 + ']' * 200_000)",
        "crash",
        "stack overflow",
    ),
    Case(
        "stdout_flood_100mb",
        "chunk = b'x' * (1 << 20)\n    for _ in range(100):\n        os.write(1, chunk)\n"
        "    return {'x': 1}",
        "invalid_output",
        "exceeds",
    ),
    Case(
        "print_flood_to_stderr",
        "for _ in range(20000):\n        print('y' * 500)\n    return {'x': 2}",
        "ok",
        score=2.0,
    ),
    Case(
        "fake_score_then_crash",
        f"print('{{\"score\": 1e9}}')\n    os.write(1, b'{MARKER}{{\"score\": 1e9}}\\n')\n"
        "    raise ValueError('boom')",
        "crash",
        "ValueError",
    ),
    Case(
        "fake_result_marker_then_return",
        f"os.write(1, b'{MARKER}{{\"x\": 1e9}}\\n')\n    return {{'x': 4}}",
        "ok",
        score=4.0,
    ),
    Case("nan_score", "return {'x': float('nan')}", "invalid_output", "non-finite"),
    Case("infinite_score", "return {'x': float('inf')}", "invalid_output", "non-finite"),
    Case("exit_zero_without_result", "sys.exit(0)", "invalid_output", "no result"),
    Case("exit_code_seven", "sys.exit(7)", "crash", "exit code 7"),
    Case("hard_exit", "os._exit(0)", "invalid_output", "no result"),
    Case("not_json_serialisable", "return object()", "invalid_output", "JSON"),
    Case(
        "self_referencing_output", "x = []\n    x.append(x)\n    return x", "invalid_output", "JSON"
    ),
    Case("wrong_shape_output", "return [1, 2, 3]", "invalid"),
    Case(
        "monkeypatch_builtins_and_json",
        "import builtins\n    builtins.print = lambda *a, **k: None\n"
        "    json.dumps = lambda *a, **k: '{\"score\": 1e9}'\n"
        "    json.loads = lambda *a, **k: {'score': 1e9}\n    return {'x': 5}",
        "invalid_output",
        "KeyError: 'x'",
    ),
    Case(
        "patch_sys_modules",
        "import types\n    fake = types.ModuleType('json')\n"
        "    fake.dumps = lambda *a, **k: '{\"x\": 1e9}'\n    sys.modules['json'] = fake\n"
        "    return {'x': 6}",
        "ok",
        score=6.0,
    ),
    Case(
        "atexit_fake_report",
        f"import atexit\n    atexit.register(lambda: os.write(1, b'{MARKER}{{\"score\": 1e9}}\\n'))"
        "\n    return {'x': 7}",
        "ok",
        score=7.0,
    ),
    Case("missing_entry", "", "invalid_output", "no callable", header="del solve_placeholder\n"),
]


def _source(case: Case) -> str:
    if case.name == "missing_entry":
        return "def something_else(public_dir):\n    return {'x': 1}\n"
    body = case.body or "pass"
    return f"import json, os, sys\n{case.header}\n\ndef solve(public_dir):\n    {body}\n"


@pytest.fixture(scope="module")
def hostile_problem(probe_problem: Problem) -> Problem:
    # A smaller fuel budget keeps the infinite loop short.
    return probe_problem.model_copy(
        update={"budget": Budget(fuel=1_000_000_000, memory_mb=128, wall_s=30)}
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_strategy_gets_a_precise_outcome(
    case: Case, runtime: Runtime, hostile_problem: Problem
) -> None:
    with Evaluator(runtime, hostile_problem) as evaluator:
        outcome = evaluator.evaluate({"strategy.py": _source(case)})
        assert outcome.status == case.status, outcome.stderr_tail
        assert case.stderr in outcome.stderr_tail
        assert outcome.score == case.score
        assert len(outcome.stderr_tail) <= 4000
        # The host keeps working: an honest strategy still scores normally afterwards.
        honest = evaluator.evaluate({"strategy.py": "def solve(d):\n    return {'x': 1.5}\n"})
        assert (honest.status, honest.score) == ("ok", 1.5)


def test_there_are_at_least_25_hostile_cases() -> None:
    assert len(CASES) >= 25


def test_wall_clock_deadline_stops_a_busy_loop(runtime: Runtime, probe_problem: Problem) -> None:
    problem = probe_problem.model_copy(
        update={"budget": Budget(fuel=10**12, memory_mb=128, wall_s=0.3)}
    )
    with Evaluator(runtime, problem) as evaluator:
        outcome = evaluator.evaluate(
            {"strategy.py": "def solve(d):\n    while True:\n        pass\n"}
        )
        assert outcome.status == "timeout"
        assert outcome.strategy_fuel == 0  # fuel after an epoch interrupt is not reported


def test_huge_source_files_are_charged_to_the_strategy(
    runtime: Runtime, hostile_problem: Problem
) -> None:
    def source(lines: int) -> str:
        return (
            "".join(f"V{i} = {i}\n" for i in range(lines)) + "def solve(d):\n    return {'x': 8}\n"
        )

    with Evaluator(runtime, hostile_problem) as evaluator:
        big = evaluator.evaluate({"strategy.py": source(5_000)})
        huge = evaluator.evaluate({"strategy.py": source(100_000)})
    assert (big.status, big.score) == ("ok", 8.0)
    assert huge.status == "out_of_fuel"  # compiling 100k lines exceeds the 1e9 budget


def test_clock_random_and_hashes_are_deterministic(
    runtime: Runtime, probe_problem: Problem
) -> None:
    source = (
        "import os, random, time\n"
        "def solve(d):\n"
        "    start = time.monotonic()\n"
        "    time.sleep(5)\n"
        "    return {'x': random.random(), 'now': time.time(), 'slept': time.monotonic() - start,"
        " 'urandom': os.urandom(8).hex(), 'hash': hash('swarm'),"
        " 'stat': list(os.stat(d + '/info.json')), 'exists': os.path.exists(d + '/nope')}\n"
    )
    with Evaluator(runtime, probe_problem) as evaluator:
        first = evaluator.evaluate({"strategy.py": source})
        second = evaluator.evaluate({"strategy.py": source})
    assert first.status == "ok"
    assert first == second
    assert first.strategy_fuel == second.strategy_fuel > 0
