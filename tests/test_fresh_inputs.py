"""Fresh inputs per candidate (issue 8 finding 7b): a package's fixed generator draws each
candidate's inputs from a seed of the problem id and the candidate's files, in both phases, so
answers remembered for one run are worth nothing in another, and any peer replays the draw."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from node.problem import PackageError, baseline_files, load_package
from research_dag import Problem, canonical_encode
from sandbox import Evaluator, Runtime
from sandbox.evaluation import inputs_seed

EXAMPLES = Path(__file__).parent.parent / "examples"
FIXED = Path(__file__).parent / "fixtures" / "faster_code_fixed"

# A package whose strategy echoes its inputs and whose evaluator reports what it was handed.
ECHO = {
    "problem.toml": (
        'name = "echo"\nstatement = "Echo the inputs."\ngenerator = "draw.py"\n'
        '[metric]\nname = "same"\ndirection = "maximize"\n'
        "[budget]\nfuel = 1_000_000_000\nmemory_mb = 128\nwall_s = 30\n"
    ),
    "draw.py": "def generate(seed, public_dir):\n    return [seed, public_dir]\n",
    "strategy.py": "def solve(public_dir, inputs):\n    return inputs\n",
    "evaluate.py": (
        "def evaluate(output, public_dir, private_dir, inputs):\n"
        "    open(private_dir + '/x.txt').read()\n"
        "    return {'score': float(output == inputs), 'details': {'seed': inputs[0]}}\n"
    ),
    "data/private/x.txt": "held out\n",
}


def write(files: dict[str, str], root: Path) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


@pytest.fixture(scope="module")
def faster_code() -> Problem:
    return load_package(EXAMPLES / "faster_code")


def test_both_phases_see_the_inputs_drawn_from_the_documented_seed(
    runtime: Runtime, tmp_path: Path
) -> None:
    problem = load_package(write(ECHO, tmp_path))
    strategy = baseline_files(problem)
    digest = hashlib.sha256(canonical_encode(strategy)).digest()
    material = b"swarm-inputs\x00" + bytes.fromhex(problem.id) + digest
    seed = int.from_bytes(hashlib.sha256(material).digest()[:8], "big") >> 1
    assert inputs_seed(problem.id, strategy) == seed
    with Evaluator(runtime, problem) as evaluator:
        outcome = evaluator.evaluate(strategy)
        other = evaluator.evaluate({"strategy.py": strategy["strategy.py"] + "# another\n"})
    assert (outcome.status, outcome.score, outcome.details) == ("ok", 1.0, {"seed": seed})
    assert other.details["seed"] not in (seed, None)


def test_a_peer_replays_the_same_draw(runtime: Runtime, faster_code: Problem) -> None:
    strategy = baseline_files(faster_code)
    with Evaluator(runtime, faster_code) as mine, Evaluator(runtime, faster_code) as peers:
        assert mine.evaluate(strategy) == peers.evaluate(strategy)


def test_literal_answers_no_longer_pay(runtime: Runtime, faster_code: Problem) -> None:
    """The original attack on faster_code: the answers returned as a literal, cheap and right
    on fixed inputs, are wrong for any other candidate's draw."""
    fixed = load_package(FIXED)
    old_answers = json.loads(fixed.files["data/private/expected.json"])
    with Evaluator(runtime, faster_code) as evaluator:
        output = evaluator.strategy_output(baseline_files(faster_code))
        assert output is not None
        for answers in (old_answers, json.loads(output)):
            outcome = evaluator.evaluate(
                {"strategy.py": f"def solve(public_dir, cases):\n    return {answers!r}\n"})
            assert (outcome.status, outcome.score) == ("invalid", None)
            assert outcome.details["wrong"] != 0


def test_the_generator_is_declared_sensibly(tmp_path: Path) -> None:
    cases = {
        "mutable": ('generator = "strategy.py"', "must be a fixed file of its own"),
        "evaluator": ('generator = "evaluate.py"', "must be a fixed file of its own"),
        "nested": ('generator = "data/public/draw.py"', "must name a top-level .py file"),
        "missing": ('generator = "nowhere.py"', "nowhere.py is missing"),
        "no_function": ('generator = "other.py"', "other.py must define a top-level function"),
    }
    for name, (line, words) in cases.items():
        files = {**ECHO, "other.py": "x = 1\n"}
        files["problem.toml"] = files["problem.toml"].replace('generator = "draw.py"', line)
        with pytest.raises(PackageError, match=words):
            load_package(write(files, tmp_path / name))


def test_a_generator_the_candidate_could_write_is_refused(
    runtime: Runtime, tmp_path: Path
) -> None:
    """A record bypassing the loader, whose generator is a mutable file or no file at all."""
    problem = load_package(write(ECHO, tmp_path))
    strategy = baseline_files(problem)
    for generator in ("strategy.py", "nowhere.py"):
        with Evaluator(runtime, problem.model_copy(update={"generator": generator})) as evaluator:
            outcome = evaluator.evaluate(strategy)
        assert (outcome.status, outcome.details) == ("invalid", {"failed_phase": 0})
        assert f"generator '{generator}' is not one of its fixed files" in outcome.stderr_tail
