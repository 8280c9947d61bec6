"""Shared fixtures: the sandbox runtime (compiled once per machine, then cached) and packages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.problem import load_package
from research_dag import Problem
from sandbox import Evaluator, Runtime, load_runtime

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    # Uses the per-machine cache (~/.cache/swarm or $SWARM_CACHE_DIR): compiles at most once.
    return load_runtime()


@pytest.fixture(scope="session")
def probe_problem() -> Problem:
    return load_package(FIXTURES / "probe")


@pytest.fixture
def probe(runtime: Runtime, probe_problem: Problem) -> Iterator[Evaluator]:
    with Evaluator(runtime, probe_problem) as evaluator:
        yield evaluator
