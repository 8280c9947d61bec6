"""The publication checks on real packages in the real sandbox: each defect a model (or a person)
is likely to write is caught by its check, and only that check, with a message saying what to do."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from node.problem import load_package
from node.publish.poser import parse_reply, write_package
from node.publish.validate import DryRunFailed, dry_run, validate_problem
from sandbox import Runtime

GOOD = Path(__file__).parent / "fixtures" / "pose" / "good.txt"
FIXED_INPUTS = Path(__file__).parent / "fixtures" / "faster_code_fixed"
Edit = Callable[[dict[str, bytes]], None]


def good_files() -> dict[str, bytes]:
    files, _ = parse_reply(GOOD.read_text())
    return files


def replace(path: str, old: str, new: str) -> Edit:
    def edit(files: dict[str, bytes]) -> None:
        text = files[path].decode()
        assert old in text
        files[path] = text.replace(old, new).encode()

    return edit


def leak_labels(files: dict[str, bytes]) -> None:
    files["data/public/answers.json"] = files["data/private/test_labels.json"]


def copy_evaluator(files: dict[str, bytes]) -> None:
    files["data/public/evaluate.py"] = files["evaluate.py"]


RECALL = """
def evaluate(output, public_dir, private_dir):
    with open(f"{private_dir}/test_labels.json", encoding="utf-8") as stream:
        labels = json.load(stream)
    if not isinstance(output, list) or len(output) != len(labels):
        return {"score": 0.0, "valid": False}
    caught = sum(1 for got, want in zip(output, labels) if got == 1 and want == 1)
    return {"score": caught / sum(labels)}
"""

CASES: dict[str, tuple[Edit, str, str]] = {
    # a recall-only metric: answering "spam" for everything is the best strategy
    "recall": (
        replace("evaluate.py", 'def evaluate(output, public_dir, private_dir):',
                RECALL + "\n\ndef unused(output, public_dir, private_dir):"),
        "gaming",
        "every number 1 and every string 'x' scores 1",
    ),
    "leak": (leak_labels, "no_leak", "data/public/answers.json contains data/private/"),
    "easy_target": (replace("problem.toml", "target = 0.95", "target = 0.6"), "target",
                    "already meets the target"),
    "snoop": (copy_evaluator, "sealed", "could read /data/public/evaluate.py"),
    "crash": (replace("strategy.py", "    with open(", "    raise KeyError('x')\n    with open("),
              "baseline", "does not evaluate: crash"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_defect_fails_its_own_check(runtime: Runtime, tmp_path: Path, case: str) -> None:
    edit, check, words = CASES[case]
    files = good_files()
    edit(files)
    write_package(files, tmp_path / case)
    validation = validate_problem(runtime, load_package(tmp_path / case))
    assert [c.name for c in validation.failures] == [check]
    assert words in validation.failures[0].message


def test_a_baseline_near_its_fuel_budget_has_no_headroom(runtime: Runtime, tmp_path: Path) -> None:
    files = good_files()
    write_package(files, tmp_path / "first")
    used = validate_problem(runtime, load_package(tmp_path / "first")).summary()["fuel"]
    assert isinstance(used, int)
    replace("problem.toml", "fuel = 2_000_000_000", f"fuel = {max(used * 3 // 2, 10**7)}")(files)
    write_package(files, tmp_path / "tight")
    with pytest.raises(DryRunFailed, match=r"headroom: the baseline uses [\d,]+ fuel"):
        dry_run(runtime, load_package(tmp_path / "tight"))


def test_a_package_with_fixed_inputs_and_a_fuel_metric_is_refused(runtime: Runtime) -> None:
    """Issue 8 finding 7c: the old faster_code (fixed cases, fuel score) rewarded returning its
    answers as a literal; the memoriser probe refuses it, and only it, saying what to change."""
    validation = validate_problem(runtime, load_package(FIXED_INPUTS))
    assert [c.name for c in validation.failures] == ["memoriser"]
    message = validation.failures[0].message
    assert message.startswith("a strategy that returns the baseline's own output as a literal "
                              "scores ")
    assert re.search(r"better than the baseline's 1\.3\d+e\+09: the inputs are fixed", message)
    assert message.endswith("draw inputs per candidate with a generator (problem.toml "
                            "`generator`): see docs/experiment-package.md#fresh-inputs")
