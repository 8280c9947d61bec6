"""Loading an experiment package from a directory into a Problem record, one message per defect."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from node.package_files import FileTooLarge, UnreadableFile, read_regular, walk_package
from research_dag import MAX_PACKAGE_BYTES, Budget, Metric, ModelLimits, Problem, parse_python

MANIFEST = "problem.toml"
EVALUATOR = "evaluate.py"
HARNESS = "harness.py"  # makes a heuristic package: sandbox.HARNESS (not imported: wasmtime)
TOP_KEYS = {
    "name",
    "statement",
    "domains",
    "entry",
    "mutable",
    "seed",
    "generator",
    "checklist",
    "metric",
    "budget",
    "runner",
    "model",
    "fixed_sites",
}
MODEL_KEYS = {"max_calls", "max_tokens", "max_prompt_bytes", "samples"}
METRIC_KEYS = {"name", "direction", "target", "source"}
BUDGET_KEYS = {"fuel", "memory_mb", "wall_s"}
IGNORED_PARTS = {"__pycache__", ".git", ".DS_Store"}
MAX_FILES = 4096
MAX_MANIFEST_BYTES = 64 * 1024
MAX_FIXED_SITES = 256
MAX_SITE = 200


class PackageError(ValueError):
    """A malformed experiment package; `defects` lists every problem found, each actionable."""

    def __init__(self, path: Path, defects: list[str]) -> None:
        self.path = path
        self.defects = defects
        lines = "\n".join(f"  - {defect}" for defect in defects)
        super().__init__(f"{path} is not a valid experiment package:\n{lines}")


# Dots outside strings and comments are dotted keys' and floats': a manifest has a few. tomllib
# walks every prefix of a dotted key, so a key of n parts costs n**2: `a.a.a...a = 1` in 60 KB
# held the loader 33 s (and a peer's Problem the node joining it, in fixed_sites).
MAX_MANIFEST_DOTS = 256
_TOML_NEXT = re.compile(r'"""|\'\'\'|["\'#.]')
_TOML_SKIP = {  # from after an opening quote (or #) to past its end; no backtracking blow-up
    '"""': re.compile(r'(?:[^"\\]|\\.|"{1,2}(?!"))*"{3,5}', re.DOTALL),
    "'''": re.compile(r"(?:[^']|'{1,2}(?!'))*'{3,5}"),
    '"': re.compile(r'(?:[^"\\\n]|\\.)*"'),
    "'": re.compile(r"[^'\n]*'"),
    "#": re.compile(r"[^\n]*"),
}


class ManifestError(ValueError):
    """A problem.toml that is not a TOML document this loader can read; the message says why."""


def parse_manifest(data: bytes) -> dict[str, Any]:
    """The table of a problem.toml's bytes (an author's or a peer's); ManifestError for anything
    tomllib cannot read, whatever it raises: an integer of 4,301 digits raised ValueError past
    its TOMLDecodeError (a traceback from `swarm run`, and a peer's Problem carrying one
    stopped every node that joined it), and it recurses per nested array or table (30,000
    fit in 64 KB)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{MANIFEST} is not UTF-8 text") from None
    if _dots_outside_strings(text) > MAX_MANIFEST_DOTS:
        raise ManifestError(f"{MANIFEST}: more than {MAX_MANIFEST_DOTS} dots outside strings: "
                            "keys are dotted a few levels deep at most")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{MANIFEST}: invalid TOML: {error}") from None
    except ValueError:  # int()'s digit limit, which tomllib does not translate
        raise ManifestError(f"{MANIFEST}: invalid TOML: a number too long to read") from None
    except (RecursionError, MemoryError):
        raise ManifestError(f"{MANIFEST}: invalid TOML: nested too deeply") from None


def _dots_outside_strings(text: str) -> int:
    """The dots of `text` outside TOML strings and comments, counted up to one past
    MAX_MANIFEST_DOTS, in one pass. An unterminated string ends the count: tomllib refuses the
    document there, having read no more dots than were counted."""
    dots, position = 0, 0
    while dots <= MAX_MANIFEST_DOTS and (found := _TOML_NEXT.search(text, position)):
        token = found.group()
        if token == ".":
            dots += 1
            position = found.end()
            continue
        end = _TOML_SKIP[token].match(text, found.end())
        if end is None:
            break
        position = end.end()
    return dots


def _collect_files(root: Path, defects: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    found, strays = walk_package(root, IGNORED_PARTS)
    defects += strays
    for relative in found:
        if relative.suffix == ".pyc":
            continue
        if len(files) >= MAX_FILES:
            defects.append(f"more than {MAX_FILES} files; bundle data into fewer files")
            break
        try:  # bounded by what is left: one oversized file cannot exhaust memory
            content = read_regular(root / relative, MAX_PACKAGE_BYTES - total)
        except FileTooLarge:
            total = MAX_PACKAGE_BYTES + 1
            break
        except UnreadableFile as error:  # unreadable, or swapped for a pipe during the walk
            defects.append(str(error))
            continue
        total += len(content)
        files[relative.as_posix()] = content
    if total > MAX_PACKAGE_BYTES:
        defects.append(
            f"the package holds more than {MAX_PACKAGE_BYTES} bytes; that is the limit "
            "(keep data small, or generate it in the evaluator from a seed)"
        )
    return files


def _unknown_keys(table: dict[str, Any], allowed: set[str], where: str) -> list[str]:
    return [
        f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})"
        for key in sorted(set(table) - allowed)
    ]


def _python_defects(name: str, content: bytes | None, function: str) -> list[str]:
    """Checks a Python file parses and defines `function` at module level."""
    if content is None:
        return [f"{name} is missing"]
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return [f"{name} is not UTF-8 text"]
    try:
        tree = parse_python(content, filename=name)
    except SyntaxError as error:
        return [f"{name} line {error.lineno}: syntax error: {error.msg}"]
    except ValueError as error:
        return [f"{name}: cannot be parsed: {error}"]
    except (RecursionError, MemoryError):  # the parser's own depth limits (issue 8, finding 8)
        return [f"{name} is nested too deeply to parse (split long chained expressions)"]
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    if function not in defined:
        return [f"{name} must define a top-level function {function}(...)"]
    return []


def _validation_defects(error: ValidationError, where: str) -> list[str]:
    defects = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ()))
        prefix = f"{where}.{location}" if location else where
        defects.append(f"{prefix}: {item.get('msg', 'invalid')}")
    return defects


def load_package(directory: Path) -> Problem:
    """The Problem record of the package at `directory`; PackageError lists every defect."""
    root = Path(directory)
    if not root.is_dir():
        raise PackageError(root, [f"{root} does not exist or is not a directory"])
    manifest = root / MANIFEST
    if not manifest.exists() and not manifest.is_symlink():
        raise PackageError(root, [f"{MANIFEST} is missing (run `swarm init DIR` for a template)"])
    try:
        table = parse_manifest(read_regular(manifest, MAX_MANIFEST_BYTES))
    except UnreadableFile as error:
        raise PackageError(root, [str(error)]) from None
    except ManifestError as error:
        raise PackageError(root, [str(error)]) from None

    defects = _unknown_keys(table, TOP_KEYS, MANIFEST)
    for key in ("name", "statement", "metric"):
        if key not in table:
            defects.append(f"{MANIFEST}: missing required key {key!r}")
    metric_table = table.get("metric", {})
    budget_table = table.get("budget", {})
    metric: Metric | None = None
    budget = Budget()
    if not isinstance(metric_table, dict):
        defects.append(f"{MANIFEST}: [metric] must be a table")
    elif "metric" in table:
        defects += _unknown_keys(metric_table, METRIC_KEYS, f"{MANIFEST} [metric]")
        direction = metric_table.get("direction")
        if direction not in ("maximize", "minimize"):
            defects.append(
                f'{MANIFEST} [metric]: direction must be "maximize" or "minimize", '
                f"not {direction!r}"
            )
        else:
            try:
                metric = Metric.model_validate(_loose(metric_table), strict=False)
            except ValidationError as error:
                defects += _validation_defects(error, f"{MANIFEST} [metric]")
    if not isinstance(budget_table, dict):
        defects.append(f"{MANIFEST}: [budget] must be a table")
    else:
        defects += _unknown_keys(budget_table, BUDGET_KEYS, f"{MANIFEST} [budget]")
        try:
            budget = Budget.model_validate(_loose(budget_table), strict=False)
        except ValidationError as error:
            defects += _validation_defects(error, f"{MANIFEST} [budget]")

    files = _collect_files(root, defects)
    mutable = table.get("mutable", ["strategy.py"])
    entry = table.get("entry", "solve")
    if not isinstance(mutable, list) or not mutable or not all(isinstance(m, str) for m in mutable):
        defects.append(f"{MANIFEST}: mutable must be a non-empty list of file names")
        mutable = ["strategy.py"]
    runner, model = _text_strategy(table, files, mutable, entry, defects)
    for index, name in enumerate(mutable):
        if "/" in name or not (name.endswith(".py") or runner is not None):
            defects.append(f"{MANIFEST}: mutable file {name!r} must be a top-level .py file"
                           " (a text strategy such as SKILL.md needs a runner)")
        elif name == EVALUATOR:
            defects.append(f"{MANIFEST}: the evaluator {EVALUATOR} cannot be mutable")
        elif index == 0 and isinstance(entry, str) and runner is None:
            defects += _python_defects(name, files.get(name), entry)
        elif name not in files:
            defects.append(f"{name} is missing")
    defects += _python_defects(EVALUATOR, files.get(EVALUATOR), "evaluate")
    generator = table.get("generator")
    if generator is not None:  # docs/experiment-package.md#fresh-inputs
        if not isinstance(generator, str) or "/" in generator or not generator.endswith(".py"):
            defects.append(f"{MANIFEST}: generator must name a top-level .py file")
        elif generator in mutable or generator == EVALUATOR:
            defects.append(f"{MANIFEST}: the generator {generator} must be a fixed file of its own")
        else:
            defects += _python_defects(generator, files.get(generator), "generate")
    if HARNESS in files and HARNESS not in mutable:  # a heuristic package (sandbox/heuristic.py)
        defects += _python_defects(HARNESS, files[HARNESS], "run")
        if generator is None:
            defects.append(f"{MANIFEST}: a heuristic package ({HARNESS}) needs a generator: "
                           "its instances are drawn per candidate")
    defects += _fixed_sites_defects(table.get("fixed_sites", []))
    if not any(path.startswith("data/private/") for path in files):
        defects.append(
            "data/private/ is empty: keep held-out labels or expected outputs there, "
            "where the strategy cannot read them"
        )
    if defects:
        raise PackageError(root, defects)
    assert metric is not None
    try:
        return Problem.model_validate(
            {
                "name": table["name"],
                "statement": table["statement"],
                "domains": table.get("domains", []),
                "metric": metric,
                "checklist": table.get("checklist", []),
                "budget": budget,
                "mutable": mutable,
                "entry": entry,
                "seed": table.get("seed", 0),
                "generator": generator,
                "runner": runner,
                "model": model,
                "files": files,
            },
            strict=False,
        )
    except ValidationError as error:
        raise PackageError(root, _validation_defects(error, MANIFEST)) from None


def _text_strategy(
    table: dict[str, Any], files: dict[str, bytes], mutable: list[str], entry: object,
    defects: list[str],
) -> tuple[str | None, ModelLimits | None]:
    """The `runner` and `[model]` of a package (docs/experiment-package.md#text-strategies),
    with a defect for each thing wrong with them."""
    runner = table.get("runner")
    if runner is not None:
        if not isinstance(runner, str) or "/" in runner or not runner.endswith(".py"):
            defects.append(f"{MANIFEST}: runner must name a top-level .py file")
            runner = None
        elif runner in mutable or runner in (EVALUATOR, table.get("generator")):
            defects.append(f"{MANIFEST}: the runner {runner} must be a fixed file of its own")
            runner = None
        else:
            if isinstance(entry, str):
                defects += _python_defects(runner, files.get(runner), entry)
            for name in mutable:
                content = files.get(name)
                if content is not None and not _is_text(content):
                    defects.append(f"{name} must be UTF-8 text (it is the strategy)")
    model_table = table.get("model")
    model = None
    if model_table is not None:
        if not isinstance(model_table, dict):
            defects.append(f"{MANIFEST}: [model] must be a table")
        else:
            defects += _unknown_keys(model_table, MODEL_KEYS, f"{MANIFEST} [model]")
            try:
                model = ModelLimits.model_validate(
                    {k: v for k, v in model_table.items() if k in MODEL_KEYS}, strict=True)
            except ValidationError as error:
                defects += _validation_defects(error, f"{MANIFEST} [model]")
    return runner, model


def _fixed_sites_defects(sites: object) -> list[str]:
    """`fixed_sites`: site labels the search never changes (docs/experiment-package.md)."""
    if (not isinstance(sites, list) or len(sites) > MAX_FIXED_SITES
            or not all(isinstance(site, str) and 0 < len(site) <= MAX_SITE for site in sites)):
        return [f"{MANIFEST}: fixed_sites must be a list of at most {MAX_FIXED_SITES} site "
                f'labels of 1-{MAX_SITE} characters, such as "strategy.py:WEIGHTS" or "EPOCHS"']
    return []


def fixed_sites(problem: Problem) -> tuple[str, ...]:
    """The sites its problem.toml marks as fixed, each as `path:label` (a label without a
    path names that label in every mutable file); () when there are none or the manifest is
    malformed (a peer's problem: never trusted to be well formed)."""
    manifest = problem.files.get(MANIFEST)
    if manifest is None or len(manifest) > MAX_MANIFEST_BYTES:
        return ()
    try:
        sites = parse_manifest(manifest).get("fixed_sites", [])
    except ManifestError:
        return ()
    if _fixed_sites_defects(sites):
        return ()
    labels: list[str] = []
    for site in sites:
        path, colon, _ = site.partition(":")
        named = colon and path in problem.mutable
        labels += [site] if named else [f"{name}:{site}" for name in problem.mutable]
    return tuple(dict.fromkeys(labels))


def _is_text(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_MAX_FLOAT_INT = int(sys.float_info.max)


def _loose(table: dict[str, Any]) -> dict[str, Any]:
    """TOML ints where floats are expected are fine (target = 1); one past any float is left
    an int for the schema to refuse (float() raised OverflowError out of the loader)."""
    return {
        key: (
            float(value)
            if key in ("target", "wall_s")
            and isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) <= _MAX_FLOAT_INT
            else value
        )
        for key, value in table.items()
    }


def baseline_files(problem: Problem) -> dict[str, str]:
    """The package's own mutable files, as text."""
    return {name: problem.files[name].decode("utf-8") for name in problem.mutable}
