"""Measures what a peer's large problems cost each derivation of the playbook: hypotheses are
made for every held problem, whose baseline strategy is analysed for sites. Before, every
derivation (every 10 rounds, on the event loop) analysed every problem again; now a node keeps
each problem's sites (problems are immutable) and analyses none until a class is live.

    .venv/bin/python bench/bench_curation_problems.py [--problems 4] [--kib 256]

Prints the time of `hypotheses_of` for one live pattern over the problems: without the cache
(what every derivation paid before), the first derivation with a cache, and a later one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.problem import load_package  # noqa: E402
from playbook import Lift, Snapshot  # noqa: E402
from playbook.hypotheses import hypotheses_of  # noqa: E402
from research_dag import DERIVED_AUTHOR, Pattern, Problem  # noqa: E402

PROBE = ROOT / "tests" / "fixtures" / "probe"


def _problems(count: int, kib: int) -> dict[str, Problem]:
    probe = load_package(PROBE)
    line = f"W = [{', '.join(str(j * 0.5) for j in range(40))}]\n"
    body = "".join(line.replace("W", f"W{i}") for i in range(kib * 1024 // len(line)))
    source = probe.files["strategy.py"].decode() + body
    made = [probe.model_copy(update={"name": f"p{n}", "files": {
        **probe.files, "strategy.py": (source + f"# {n}\n").encode()}}) for n in range(count)]
    return {problem.id: problem for problem in made}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=4)
    parser.add_argument("--kib", type=int, default=256)
    args = parser.parse_args()
    problems = _problems(args.problems, args.kib)
    live = Pattern(mutation_kind="perturb:constant", operation="perturb", affordance="constant",
                   text="t", status="live", author=DERIVED_AUTHOR)
    chains = {"perturb:constant": [Snapshot(live, Lift(8, 10, 1, 10), {})]}
    timings = []
    cache: dict[str, dict[str, list[str]]] = {}
    for label, sites_of in (("before (no cache)", None), ("first, cached", cache),
                            ("later, cached", cache)):
        start = time.perf_counter()
        made = hypotheses_of(chains, problems, sites_of=sites_of)
        timings.append(time.perf_counter() - start)
        print(f"{label}: {timings[-1]:.3f} s for {args.problems} problems of {args.kib} KiB,"
              f" {len(made)} hypotheses")
    print(f"later/before {timings[2] / timings[0]:.5f}")


if __name__ == "__main__":
    main()
