"""The candidates `swarm eval` scores in one process: the package's own strategy, `--strategy`
files, and JSON Lines of candidates from a file or stdin (issue 14, rough edge 6). All of it is
read bounded and checked here; a problem is one red line and exit code 2."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from node.cli.options import EXIT_USAGE, _fail
from research_dag import MAX_SOURCE, Problem

MAX_CANDIDATES = 10_000  # candidates one `swarm eval` takes
# A JSON line holds every mutable file, escaped: room for a few full-size files each.
MAX_LINE = 8 * MAX_SOURCE
MAX_INPUT = 256 * 1024 * 1024  # bytes of JSON Lines read in all


@dataclass(frozen=True)
class Candidate:
    """One strategy to score: where it came from (a path, or `stdin:3` for the third line)
    and the package's mutable files as it has them."""

    label: str
    files: dict[str, str]


def candidates_of(problem: Problem, baseline: dict[str, str], strategies: list[Path],
                  lines: Path | None) -> list[Candidate]:
    """The package's own strategy when nothing else is given; else each `--strategy` file (as
    the first mutable file) and each line of `lines` ('-': stdin), in that order."""
    chosen = [_strategy_file(problem, baseline, path) for path in strategies]
    if lines is not None:
        if str(lines) == "-":
            chosen += _json_lines(problem, baseline, sys.stdin.buffer, "stdin")
        else:
            try:
                with lines.open("rb") as stream:
                    chosen += _json_lines(problem, baseline, stream, str(lines))
            except OSError as error:
                _fail(f"cannot read {lines}: {error.strerror or error}", EXIT_USAGE)
    if len(chosen) > MAX_CANDIDATES:
        _fail(f"{len(chosen)} candidates; one run scores at most {MAX_CANDIDATES}", EXIT_USAGE)
    return chosen or [Candidate("package", dict(baseline))]


def _strategy_file(problem: Problem, baseline: dict[str, str], path: Path) -> Candidate:
    from node.package_files import UnreadableFile, read_regular

    try:  # bounded: `--strategy /dev/zero` is refused, not read until memory runs out
        source = read_regular(path, MAX_SOURCE).decode("utf-8")
    except UnreadableFile as error:
        _fail(str(error), EXIT_USAGE)
    except UnicodeDecodeError:
        _fail(f"{path} is not UTF-8 text", EXIT_USAGE)
    return Candidate(str(path), {**baseline, problem.mutable[0]: source})


def _json_lines(problem: Problem, baseline: dict[str, str], stream: BinaryIO, name: str
                ) -> list[Candidate]:
    """Each non-blank line: a JSON object from mutable file names to their source (a file it
    leaves out keeps the package's own)."""
    found: list[Candidate] = []
    total = 0
    for number, raw in enumerate(iter(lambda: stream.readline(MAX_LINE + 1), b""), start=1):
        total += len(raw)
        where = f"{name}:{number}"
        if len(raw) > MAX_LINE:
            _fail(f"{where}: a line is longer than {MAX_LINE} bytes", EXIT_USAGE)
        if total > MAX_INPUT or len(found) >= MAX_CANDIDATES:
            _fail(f"{name}: more than {MAX_INPUT} bytes or {MAX_CANDIDATES} candidates",
                  EXIT_USAGE)
        if not raw.strip():
            continue
        found.append(Candidate(where, {**baseline, **_files(problem, raw, where)}))
    return found


def _files(problem: Problem, raw: bytes, where: str) -> dict[str, str]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        _fail(f"{where}: not a JSON object (one candidate per line: "
              '{"strategy.py": "source..."})', EXIT_USAGE)
    mutable = set(problem.mutable)
    if not isinstance(value, dict) or not value:
        _fail(f"{where}: want an object from mutable file names to their source", EXIT_USAGE)
    for key, source in value.items():
        if key not in mutable:
            _fail(f"{where}: {key!r} is not a mutable file of this package "
                  f"({', '.join(sorted(mutable))})", EXIT_USAGE)
        if not isinstance(source, str) or len(source) > MAX_SOURCE:
            _fail(f"{where}: {key!r} must be text of at most {MAX_SOURCE} characters",
                  EXIT_USAGE)
    return value
