"""The path schema of records: every path-like field refuses what could leave a staging root or
alias another file, accepts what real packages use, and records are consistent on their own
(issue 8, findings 1 and 2)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from node.problem import load_package
from research_dag import (
    Experiment,
    Metric,
    Outcome,
    PathError,
    Problem,
    RecordError,
    canonical_encode,
    check_mutable_path,
    check_package_path,
    check_path_set,
    decode_record,
    validate_record,
)

ROOT = Path(__file__).parent.parent
HOSTILE = [
    "../../../../tmp/x",
    "/home/user/.bashrc",
    "/abs/path",
    "..",
    ".",
    "",
    "a//b",
    "a/",
    "/",
    "a/./b",
    "a/../b",
    "strategy.py/../../x",
    "C:/Windows/x.py",
    "C:x.py",
    "a\\..\\b",
    "\\\\server\\share\\x",
    "x\x00.py",
    "x\n.py",
    "x\x1b[2J.py",
    ".bashrc",
    "data/.hidden",
    "-rf",
    "a b.py",
    "~/x",
    "caf\u00e9.py",
    "x\u202e.py",
    "strategy.",
    "NUL",
    "con.txt",
    "data/public/aux.json",
    "x" * 101,
    "/".join(["d"] * 9),
]
LEGIT = [
    "strategy.py",
    "evaluate.py",
    "generate.py",
    "problem.toml",
    "data/public/train.csv",
    "data/private/test_labels.csv",
    "data/public/a/b/c/file-1.json",
    "_helpers.py",
    "v1.2.txt",
    "console.py",  # not the device name `con`
]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_paths_are_refused(path: str) -> None:
    with pytest.raises(PathError):
        check_package_path(path)


@pytest.mark.parametrize("path", LEGIT)
def test_paths_real_packages_use_are_accepted(path: str) -> None:
    assert check_package_path(path) == path


def test_every_shipped_package_passes_the_schema() -> None:
    packages = [p for p in (ROOT / "examples").iterdir() if (p / "problem.toml").is_file()]
    packages += [
        ROOT / "node" / "publish" / "templates" / "package",
        ROOT / "tests" / "fixtures" / "probe",
    ]
    for package in packages:
        problem = load_package(package)
        for path in problem.files:
            check_package_path(path)


def test_mutable_paths_are_top_level() -> None:
    assert check_mutable_path("strategy.py") == "strategy.py"
    with pytest.raises(PathError, match="top of the package"):
        check_mutable_path("data/public/strategy.py")


@pytest.mark.parametrize(
    ("paths", "why"),
    [
        (["Strategy.py", "strategy.py"], "differ only in case"),
        (["data", "data/x.csv"], "is a file and a directory"),
        (["DATA", "data/x.csv"], "is a file and a directory"),
    ],
)
def test_path_sets_that_would_alias_are_refused(paths: list[str], why: str) -> None:
    with pytest.raises(PathError, match=why):
        check_path_set(paths)


SEGMENTS = st.sampled_from(
    ["..", ".", "", "x", "a.py", "~", "C:", "\\", "\x00", "\n", " ", "-", "CON", "data", "é"]
)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=60), st.lists(SEGMENTS, max_size=10).map("/".join)))
def test_an_accepted_path_names_a_file_strictly_inside_any_root(path: str) -> None:
    try:
        check_package_path(path)
    except PathError:
        return
    root = "/r/o/o/t"
    joined = os.path.normpath(os.path.join(root, path))
    assert joined.startswith(root + "/") and joined == f"{root}/{path}"
    assert path.isascii() and path.isprintable() and "\\" not in path and ":" not in path
    assert not any(part.startswith((".", "-")) for part in path.split("/"))


def _problem(**fields: Any) -> dict[str, Any]:
    problem = Problem(
        name="p",
        statement="s",
        metric=Metric(name="m", direction="maximize"),
        mutable=["strategy.py"],
        files={"strategy.py": b"def solve(x):\n    return x\n", "evaluate.py": b"print(1)\n"},
    )
    return {**problem.plain(), **fields}


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"mutable": ["missing.py"]}, "not one of the package files"),  # finding 2
        ({"mutable": ["strategy.py", "strategy.py"]}, "names a file twice"),
        ({"mutable": ["evaluate.py"]}, "cannot be mutable"),
        (
            {"mutable": ["notes.txt"], "files": {"notes.txt": b"x", "evaluate.py": b""}},
            "entry module",
        ),
        ({"files": {"strategy.py": b"\xff\xfe"}}, "not UTF-8"),
        ({"mutable": ["../strategy.py"]}, "mutable"),
        ({"files": {"strategy.py": b"", "../../x": b""}}, "files"),
        ({"files": {"strategy.py": b"", "data": b"", "data/x": b""}}, "file and a directory"),
        ({"generator": "inputs.py"}, "generator"),  # not one of the files
        ({"generator": "strategy.py"}, "generator"),  # mutable
        ({"generator": "evaluate.py"}, "generator"),
        ({"generator": "data/inputs.py"}, "generator"),  # not at the top
    ],
)
def test_inconsistent_problems_are_refused_when_decoded(fields: dict[str, Any], why: str) -> None:
    raw = _problem(**fields)
    with pytest.raises(RecordError, match=why):
        validate_record(raw)
    with pytest.raises(RecordError, match=why):
        decode_record(canonical_encode(raw))
    with pytest.raises(ValidationError):
        Problem.model_validate(raw)


@pytest.mark.parametrize("key", [*HOSTILE, "data/public/strategy.py"])
def test_experiment_strategy_keys_follow_the_schema(key: str) -> None:
    raw = Experiment(
        problem="0" * 64, strategy={"strategy.py": ""}, outcome=Outcome(status="ok")
    ).plain()
    raw["strategy"] = {key: "print('pwned')\n"}
    with pytest.raises(RecordError, match="strategy"):
        validate_record(raw)


def test_strategy_keys_that_alias_are_refused() -> None:
    with pytest.raises(ValidationError, match="differ only in case"):
        Experiment(
            problem="0" * 64,
            strategy={"strategy.py": "", "Strategy.py": ""},
            outcome=Outcome(status="ok"),
        )
