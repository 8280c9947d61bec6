"""Server-side downsampling for the charts: a problem with 100,000 experiments sends a few
thousand points, never dropping a kept one or a node's extremes, and the checklist pass rates
are estimated from a bounded sample of records per time bucket."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

from node.web.state import STATUS_CODES, Entry

MAX_POINTS = 4000  # points one response carries at most (kept ones come on top)
RATE_BUCKETS = 40  # points of the pass-rate lines
RATE_SAMPLE = 24  # records read per pass-rate bucket at most
RATE_SPAN = 4  # attempts per pass-rate bucket at least (one attempt is 0 or 1, not a rate)


def pick(entries: Sequence[Entry], limit: int = MAX_POINTS) -> list[int]:
    """Positions of `entries` to draw, ascending: all of them when they fit; else, per bucket
    of consecutive entries and per author, the lowest and highest score, plus every baseline
    and kept entry and every failure's first of its bucket (crashes stay visible)."""
    count = len(entries)
    if count <= limit:
        return list(range(count))
    chosen: set[int] = set()
    authors = len({entry.author for entry in entries})
    buckets = max(1, limit // (3 * authors))  # a low, a high and a failure per author each
    size = max(1, -(-count // buckets))
    for start in range(0, count, size):
        low: dict[int, int] = {}
        high: dict[int, int] = {}
        failed: dict[int, int] = {}
        for position in range(start, min(count, start + size)):
            entry = entries[position]
            if entry.status in ("keep", "baseline"):
                chosen.add(position)
            score = entry.header.score
            if score is None:
                failed.setdefault(entry.author, position)
                continue
            low_at = low.get(entry.author)
            if low_at is None or score < (entries[low_at].header.score or 0.0):
                low[entry.author] = position
            high_at = high.get(entry.author)
            if high_at is None or score > (entries[high_at].header.score or 0.0):
                high[entry.author] = position
        chosen.update(low.values(), high.values(), failed.values())
    return sorted(chosen)


def columns(entries: Sequence[Entry], positions: list[int]) -> dict[str, list[Any]]:
    """The chosen points as columns (compact JSON): position in the log, time (s), score,
    author index and status code."""
    rows = [entries[p] for p in positions]
    return {
        "n": positions,
        "t": [e.t_ms / 1000 for e in rows],
        "y": [e.header.score for e in rows],
        "a": [e.author for e in rows],
        "s": [STATUS_CODES[e.status] for e in rows],
    }


def pass_rates(entries: Sequence[Entry], items_of: Callable[[list[str]], dict[str, dict[str, bool]]]
               ) -> dict[str, Any]:
    """Per checklist item, the share of attempts that passed it, per time bucket. At most
    RATE_SAMPLE records per bucket are read (evenly spread), so the cost is bounded; `sampled`
    says whether any bucket was estimated from a sample."""
    count = len(entries)
    if count == 0:
        return {"t": [], "items": {}, "sampled": False}
    buckets = min(RATE_BUCKETS, max(1, count // RATE_SPAN))
    bounds = [round(i * count / buckets) for i in range(buckets + 1)]
    # Every step-th attempt, the step a power of two: as the log grows the same attempts stay
    # sampled (their results are cached between polls) until the step doubles.
    step = 1 << max(0, math.ceil(math.log2(max(1.0, count / (buckets * RATE_SAMPLE)))))
    wanted: list[list[str]] = []
    for low, high in itertools.pairwise(bounds):
        first = -(-low // step) * step
        wanted.append([entries[p].header.id for p in range(first, high, step)])
    sampled = step > 1
    found = items_of([record_id for ids in wanted for record_id in ids])
    names = sorted({name for items in found.values() for name in items})
    rates: dict[str, list[float | None]] = {name: [] for name in names}
    times: list[float] = []
    for (low, high), ids in zip(itertools.pairwise(bounds), wanted, strict=True):
        times.append(entries[(low + high - 1) // 2].t_ms / 1000)
        for name in names:
            marks = [found[i][name] for i in ids if i in found and name in found[i]]
            rates[name].append(sum(marks) / len(marks) if marks else None)
    return {"t": times, "items": rates, "sampled": sampled}
