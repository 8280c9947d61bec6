"""The package loader: a valid package loads; every defect gets its own actionable message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from node.problem import PackageError, baseline_files, load_package

PROBE = Path(__file__).parent / "fixtures" / "probe"


@pytest.fixture
def package(tmp_path: Path) -> Path:
    target = tmp_path / "pkg"
    shutil.copytree(PROBE, target)
    return target


def _defects(path: Path) -> list[str]:
    with pytest.raises(PackageError) as caught:
        load_package(path)
    assert str(path) in str(caught.value)
    return caught.value.defects


def _edit_toml(package: Path, old: str, new: str) -> None:
    manifest = package / "problem.toml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new))


def test_a_valid_package_loads_with_a_stable_id(package: Path) -> None:
    problem = load_package(package)
    assert problem.name == "probe"
    assert problem.metric.direction == "maximize"
    assert problem.metric.target == 10.0
    assert baseline_files(problem) == {"strategy.py": (package / "strategy.py").read_text()}
    assert "data/private/labels.json" in problem.files
    assert load_package(package).id == problem.id


def test_missing_directory(tmp_path: Path) -> None:
    assert "does not exist" in _defects(tmp_path / "nope")[0]


def test_missing_manifest(package: Path) -> None:
    (package / "problem.toml").unlink()
    assert "problem.toml is missing" in _defects(package)[0]


def test_bad_toml_names_the_line(package: Path) -> None:
    (package / "problem.toml").write_text('name = "x"\nstatement = \n')
    [defect] = _defects(package)
    assert "invalid TOML" in defect and "line 2" in defect


@pytest.mark.parametrize(("opens", "closes"), [("[", "]"), ("{b=", "}")])
def test_a_manifest_nested_too_deeply_is_a_clear_error(package: Path, opens: str,
                                                       closes: str) -> None:
    """tomllib recurses once per nested array or inline table: 30,000 levels fit in a 64 KB
    manifest, and its RecursionError was a traceback."""
    depth = 12_000  # within MAX_MANIFEST_BYTES
    (package / "problem.toml").write_text(f"a = {opens * depth}1{closes * depth}\n")
    [defect] = _defects(package)
    assert "invalid TOML: nested too deeply" in defect


def test_unknown_direction(package: Path) -> None:
    _edit_toml(package, 'direction = "maximize"', 'direction = "upwards"')
    assert any("direction must be" in d and "'upwards'" in d for d in _defects(package))


def test_budget_out_of_range(package: Path) -> None:
    _edit_toml(package, "memory_mb = 128", "memory_mb = 8")
    assert any("[budget]" in d and "memory_mb" in d for d in _defects(package))


def test_unknown_keys_are_typos(package: Path) -> None:
    _edit_toml(package, "seed = 7", "seed = 7\nmutabel = []")
    assert any("unknown key 'mutabel'" in d for d in _defects(package))


def test_every_defect_is_reported_at_once(package: Path) -> None:
    (package / "evaluate.py").unlink()
    (package / "strategy.py").write_text("def solve(:\n")
    _edit_toml(package, "wall_s = 20", "wall_s = -1")
    defects = _defects(package)
    assert any(d == "evaluate.py is missing" for d in defects)
    assert any(d.startswith("strategy.py line 1: syntax error") for d in defects)
    assert any("wall_s" in d for d in defects)


def test_entry_point_must_exist(package: Path) -> None:
    _edit_toml(package, 'entry = "solve"', 'entry = "run"')
    assert any("define a top-level function run" in d for d in _defects(package))


def test_evaluator_cannot_be_mutable(package: Path) -> None:
    _edit_toml(package, 'mutable = ["strategy.py"]', 'mutable = ["strategy.py", "evaluate.py"]')
    assert any("cannot be mutable" in d for d in _defects(package))


def test_held_out_data_is_required(package: Path) -> None:
    shutil.rmtree(package / "data" / "private")
    assert any("data/private/ is empty" in d for d in _defects(package))


def test_symlinks_are_refused(package: Path) -> None:
    (package / "data" / "public" / "passwd").symlink_to("/etc/passwd")
    assert any("symbolic link" in d for d in _defects(package))


def test_non_utf8_strategy(package: Path) -> None:
    (package / "strategy.py").write_bytes(b"def solve(d):\n    return '\xff'\n")
    assert any("not UTF-8" in d for d in _defects(package))
