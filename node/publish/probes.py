"""Adversarial strategies a package's evaluator must see through before it is published: broken,
degraded, constant, non-finite, score-faking, snooping and memorising variants of the baseline."""

from __future__ import annotations

import json
from collections.abc import Mapping

from node.publish.text_probes import text_memoriser_files, text_probe_files
from research_dag import Problem
from sandbox import is_heuristic

# What each probe does to the baseline's output, as a person reads it in a report.
GAMING = {
    "none": "returns None",
    "empty": "returns an empty value of the output's type",
    "zero": "returns the output with every number 0 and every string empty",
    "one": "returns the output with every number 1 and every string 'x'",
    "nan": "returns the output with every number NaN",
    "inf": "returns the output with every number +infinity",
    "ninf": "returns the output with every number -infinity",
    "first": "returns every list filled with its first element (a constant answer)",
    "fake_score": 'prints a fake {"score": ...} line and returns None',
}
# Degradations that keep the output's shape: an evaluator that measures anything scores at
# least one of them worse than the baseline (or rejects it).
DEGRADED = ("zero", "one", "reverse", "first")
# A heuristic package's function (docs/experiment-package.md#heuristic-packages): a constant
# function and a random one must both score worse than the baseline, or be rejected.
HEURISTIC_DEGRADED = ("zero", "random")
DESCRIPTIONS = {
    **GAMING,
    "reverse": "returns the output with every list reversed",
    "random": "returns the output with every number random (a random function)",
}
MEMORISER = "returns the baseline's own output as a literal"
LEAK_MARKER = "SWARM-PROBE-READ:"

# Appended to the first mutable file; rebinds the entry point to a wrapper around the
# original. Plain guest Python (it runs inside the sandbox, never on the host).
_WRAPPER = '''

# ---- swarm validation probe: never published ----
def _swarm_probe(original, kind, snoop):
    import math
    import os
    import sys

    numbers = {"zero": 0, "one": 1, "nan": math.nan, "inf": math.inf, "ninf": -math.inf}
    draw = __import__("random").Random(0x5EED).random if kind == "random" else None
    snooped = []
    strings = {"zero": "", "one": "x"}

    def transform(value):
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return draw() if kind == "random" else numbers.get(kind, value)
        if isinstance(value, str):
            return strings.get(kind, value)
        if isinstance(value, list):
            items = [transform(item) for item in value]
            if kind == "reverse":
                items.reverse()
            if kind == "first" and items:
                items = [items[0]] * len(items)
            return items
        if isinstance(value, dict):
            return {key: transform(item) for key, item in value.items()}
        return value

    def entry(*args, **kwargs):
        if kind == "snoop" and not snooped:
            # Once (a heuristic's function is called many times). Where a phase's messages are
            # withheld, only the exception's name says that something could be read.
            snooped.append(True)
            read = False
            for path in snoop:
                try:
                    with open(path, "rb") as stream:
                        stream.read(1)
                except OSError:
                    continue
                print(%(marker)r + path, file=sys.stderr)
                read = True
            if read:
                raise FileExistsError(%(marker)r)
            return original(*args, **kwargs)
        if kind == "snoop":
            return original(*args, **kwargs)
        if kind == "fake_score":
            line = '{"score": 1e300, "items": {}, "valid": true}\\n'
            print(line, end="")
            os.write(1, line.encode())
            return None
        if kind == "none":
            return None
        value = original(*args, **kwargs)
        if kind == "empty":
            return type(value)() if isinstance(value, (list, dict, str)) else 0
        return transform(value)

    return entry


%(entry)s = _swarm_probe(%(entry)s, %(kind)r, %(snoop)s)
'''


def probe_files(problem: Problem, baseline: Mapping[str, str], kind: str) -> dict[str, str]:
    """The baseline's files with the entry point wrapped by probe `kind`."""
    if kind not in DESCRIPTIONS and kind != "snoop":
        raise ValueError(f"unknown probe {kind!r}")
    if problem.runner is not None:  # a text strategy: the probes are texts (text_probes.py)
        return text_probe_files(problem, baseline, kind)
    first = problem.mutable[0]
    files = dict(baseline)
    files[first] = baseline[first] + _WRAPPER % {
        "marker": LEAK_MARKER,
        "entry": problem.entry,
        "kind": kind,
        "snoop": json.dumps(snoop_paths(problem)),
    }
    return files


def probe_kinds(problem: Problem) -> tuple[str, ...]:
    """Every probe `validate` runs side by side on `problem` (the snoop runs alone)."""
    kinds = (*GAMING, *(kind for kind in DEGRADED if kind not in GAMING))
    return (*kinds, "random") if is_heuristic(problem) else kinds


def degraded_kinds(problem: Problem) -> tuple[tuple[str, ...], bool]:
    """The degraded probes and whether all of them (a heuristic package: a constant and a
    random function) or one of them must score worse than the baseline."""
    return (HEURISTIC_DEGRADED, True) if is_heuristic(problem) else (DEGRADED, False)


def snoop_paths(problem: Problem) -> list[str]:
    """Where the evaluator's files and the private data would be, were they mounted."""
    mutable = set(problem.mutable)
    paths = []
    for path in sorted(problem.files):
        if path.startswith("data/private/"):
            paths.append("/" + path)
        elif not path.startswith("data/") and path not in mutable and path != "problem.toml":
            paths.extend((f"/evaluator/{path}", f"/strategy/{path}", f"/data/public/{path}"))
    return paths


# Appended to the first mutable file: the entry point answers from memory, computing nothing.
_MEMORISER = '''

# ---- swarm validation probe: never published ----
def _swarm_memoriser(*args, **kwargs):
    import json

    return json.loads(%(output)r)


%(entry)s = _swarm_memoriser
'''


def memoriser_files(problem: Problem, baseline: Mapping[str, str], output: bytes) -> dict[str, str]:
    """The baseline's files with the entry point returning `output` (the baseline's own result
    as JSON) as a literal: on fixed inputs this is right and costs almost nothing."""
    if problem.runner is not None:
        return text_memoriser_files(problem, baseline, output)
    first = problem.mutable[0]
    files = dict(baseline)
    files[first] = baseline[first] + _MEMORISER % {
        "output": output.decode("utf-8", errors="replace"),
        "entry": problem.entry,
    }
    return files
