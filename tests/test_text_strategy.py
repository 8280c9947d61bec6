"""Text strategies (issue 13): a package whose mutable file is text (SKILL.md) and whose fixed
runner applies it in phase 1; the loader's messages for every malformed form, and a real
sandbox evaluation of a runner that asks no model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from node.problem import PackageError, load_package
from sandbox import Evaluator, Runtime

EXAMPLE = Path(__file__).parent.parent / "examples" / "skill_landing_copy"
RUNNER = '''
import json

def run(public_dir):
    context = json.load(open("/runner/swarm_text.json"))
    text = open(context["strategy_dir"] + "/SKILL.md", encoding="utf-8").read()
    words = json.load(open(public_dir + "/words.json"))
    return [[str(sum(text.count(w) for w in words)) for _ in range(context["samples"])]]
'''
EVALUATOR = '''
def evaluate(output, public_dir, private_dir):
    return {"score": float(len(output[0])) + int(output[0][0]) / 100, "details": {"case:01": "1"}}
'''
MANIFEST = '''
name = "text"
statement = "count words"
mutable = ["SKILL.md"]
runner = "run.py"
entry = "run"
[metric]
name = "n"
direction = "maximize"
'''


def _package(
    tmp_path: Path, manifest: str = MANIFEST, files: dict[str, str | bytes] | None = None
) -> Path:
    root = tmp_path / "package"
    (root / "data" / "public").mkdir(parents=True)
    (root / "data" / "private").mkdir(parents=True)
    contents: dict[str, str | bytes] = {
        "problem.toml": manifest,
        "SKILL.md": "Name the product. Name it twice.",
        "run.py": RUNNER,
        "evaluate.py": EVALUATOR,
        "data/public/words.json": '["Name"]',
        "data/private/x.txt": "x",
    }
    contents.update(files or {})
    for name, value in contents.items():
        path = root / name
        if isinstance(value, bytes):
            path.write_bytes(value)
        else:
            path.write_text(value)
    return root


def _defects(root: Path) -> list[str]:
    with pytest.raises(PackageError) as error:
        load_package(root)
    return error.value.defects


def test_the_example_declares_a_text_strategy() -> None:
    problem = load_package(EXAMPLE)
    assert problem.mutable == ["SKILL.md"] and problem.runner == "run.py"
    assert problem.model is not None and problem.model.max_calls == 40


@pytest.mark.parametrize(
    ("edit", "phrase"),
    [
        (('runner = "run.py"', 'runner = "SKILL.md"'), "runner must name a top-level .py file"),
        (('runner = "run.py"', 'runner = "evaluate.py"'), "must be a fixed file of its own"),
        (('runner = "run.py"', 'runner = "missing.py"'), "missing.py is missing"),
        (('runner = "run.py"\n', ""), "needs a runner"),
        (('entry = "run"', 'entry = "go"'), "run.py must define a top-level function go"),
        (("[metric]", "[model]\nmax_calls = 0\n[metric]"), "[model].max_calls"),
        (("[metric]", "[model]\nsamples = 99\n[metric]"), "[model].samples"),
        (("[metric]", "[model]\ncalls = 3\n[metric]"), "unknown key 'calls'"),
        (("[metric]", "[model]\nmax_tokens = 'many'\n[metric]"), "[model].max_tokens"),
    ],
)
def test_each_malformed_text_package_gets_a_clear_defect(
    tmp_path: Path, edit: tuple[str, str], phrase: str
) -> None:
    defects = _defects(_package(tmp_path, MANIFEST.replace(*edit)))
    assert any(phrase in defect for defect in defects), defects


def test_a_strategy_that_is_not_text_is_refused(tmp_path: Path) -> None:
    defects = _defects(_package(tmp_path, files={"SKILL.md": b"\xff\xfe"}))
    assert any("SKILL.md must be UTF-8 text" in defect for defect in defects), defects


def test_phase_one_runs_the_fixed_runner_on_the_candidate_text(
    runtime: Runtime, tmp_path: Path
) -> None:
    manifest = MANIFEST + "[model]\nsamples = 3\n"
    problem = load_package(_package(tmp_path, manifest))
    with Evaluator(runtime, problem) as evaluator:
        once = evaluator.evaluate({"SKILL.md": "Name"})
        thrice = evaluator.evaluate({"SKILL.md": "Name Name Name"})
        code = evaluator.evaluate({"SKILL.md": "def run(d):\n    return [['99']]\n"})
        wrong = evaluator.evaluate({"run.py": "def run(d):\n    return 1\n"})
    assert once.status == "ok" and once.score == 3.01  # three samples, one "Name"
    assert thrice.score == 3.03
    assert code.score == 3.0  # a candidate's text is never run as code
    assert wrong.status == "invalid"  # the runner is fixed: a candidate cannot replace it


def test_the_example_copies_into_a_package_that_loads(tmp_path: Path) -> None:
    target = tmp_path / "copy"
    shutil.copytree(EXAMPLE, target)
    (target / "SKILL.md").write_text("")
    assert load_package(target).files["SKILL.md"] == b""


def test_repeated_samples_are_distinct_requests_and_the_gate_pairs_their_mean(
    runtime: Runtime, tmp_path: Path
) -> None:
    from node.llm import ModelGateway, StandinProvider
    from node.model_evaluations import ModelEvaluations
    from node.noise_gate import case_scores

    target = tmp_path / "copy"
    shutil.copytree(EXAMPLE, target)
    manifest = (target / "problem.toml").read_text()
    (target / "problem.toml").write_text(
        manifest.replace("samples = 1", "samples = 3").replace("max_calls = 40", "max_calls = 60"))
    problem = load_package(target)
    gateway = ModelGateway(StandinProvider())
    with Evaluator(runtime, problem) as evaluator:
        evaluated = ModelEvaluations(evaluator, problem, gateway)(
            {"SKILL.md": problem.files["SKILL.md"].decode()})
    outcome = evaluated.outcome
    assert outcome.status == "ok" and outcome.score == 0.4
    assert outcome.details["case:01"] == "11000 11000 11000"
    assert case_scores(outcome)["case:01"] == 0.4
    calls = evaluated.transcript.calls
    assert len(calls) == 60  # 30 copies (10 products x 3 samples) + 30 judgements
    assert len({call.request for call in calls if call.kind == "complete"}) == 30
