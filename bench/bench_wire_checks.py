"""What the hostile-input checks of the wire cost (issue 8, findings 1, 2, 11): the nesting scan
of every message and record, against decoding them (schema, paths, consistency, signatures).

    .venv/bin/python bench/bench_wire_checks.py [--repeat 5]

Prints, per message shape, the median time of the full decode and of the nesting scans inside
it, and their ratio; the path schema is part of the decode (a 4,001-file problem shows its
worst case).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from node.identity import Identity, sign_record
from node.net.wire import decode_batch, encode_batch
from research_dag import (
    Experiment,
    Metric,
    Outcome,
    Problem,
    decode_record,
    encode_record,
    nesting_exceeds,
)

AUTHOR = Identity.from_seed(b"\x01" * 32)


def _median_ms(run: Callable[[], object], repeat: int, number: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            run()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args()

    experiments = [
        sign_record(
            Experiment(
                problem="0" * 64,
                strategy={"strategy.py": f"x = {i}\n" * 200},
                outcome=Outcome(status="ok", score=1.0, details={"a": 1, "b": "x"}),
                created_ms=i,
            ),
            AUTHOR,
        )
        for i in range(64)
    ]
    [envelope] = encode_batch(experiments)
    items = [encode_record(record) for record in experiments]
    files = {f"data/public/f{i}.csv": b"1,2\n" for i in range(4000)}
    problem = sign_record(
        Problem(
            name="p", statement="s", metric=Metric(name="m", direction="maximize"),
            mutable=["strategy.py"], files={"strategy.py": b"x = 1\n", **files},
        ),
        AUTHOR,
    )
    big = encode_record(problem)
    shapes: list[tuple[str, Callable[[], object], Callable[[], object], int]] = [
        ("envelope, 64 experiments", lambda: decode_batch(envelope),
         lambda: (nesting_exceeds(envelope), [nesting_exceeds(item) for item in items]), 20),
        ("problem, 4,001 files", lambda: decode_record(big), lambda: nesting_exceeds(big), 10),
    ]
    print(f"{'message':<26} {'decode ms':>10} {'scans ms':>9} {'ratio':>6}")
    for name, decode, scan, number in shapes:
        full = _median_ms(decode, args.repeat, number)
        scans = _median_ms(scan, args.repeat, number)
        print(f"{name:<26} {full:>10.2f} {scans:>9.3f} {scans / full:>6.3f}")


if __name__ == "__main__":
    main()
