"""The dashboard on a big problem: a store of 100,000 synthetic experiments (lineages as a loop
makes them, 4 authors, a fifth failed, five checklist items each), then the time and bytes of
the API answers a browser needs for its first paint of each page, and of one live poll after
100 more experiments arrive, through the real ASGI app (Starlette's TestClient). Baseline, in
the same process: opening the store's DAG and reading the problem's experiment headers once
(what any view of the problem pays before it shows anything).

    .venv/bin/python bench/bench_dashboard.py [--experiments 100000] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from node.problem import load_package  # noqa: E402
from node.store import RecordStore  # noqa: E402
from node.web import DashboardSource  # noqa: E402
from node.web.app import dashboard_app  # noqa: E402
from research_dag import Experiment, Outcome, Problem  # noqa: E402

AUTHORS = ["local", "peer-a", "peer-b", "peer-c"]
ITEMS = ("names_product", "mentions_price", "has_call_to_action", "right_length", "no_shouting")
BATCH = 2000


def build(path: Path, count: int, seed: int = 0, start: int = 0,
          problem: Problem | None = None) -> Problem:
    """`count` experiments on examples/landing_copy, each the child of one of the newest 64
    ok ones (a baseline first), in batches of BATCH per transaction."""
    rng = random.Random(seed + start)
    problem = problem or load_package(ROOT / "examples" / "landing_copy")
    path_name = problem.mutable[0]
    text = problem.files[path_name].decode()
    with RecordStore.open(path, durable=False) as store:
        store.add(problem)
        recent: list[tuple[str, float]] = []
        if start:
            recent = [(e.id, e.outcome.score or 0.0) for e in store.iter_records(
                kind="experiment") if isinstance(e, Experiment) and e.outcome.score][-64:]
        batch: list[Experiment] = []
        for at in range(start, start + count):
            parent = rng.choice(recent[-64:]) if recent else None
            failed = parent is not None and rng.random() < 0.2
            score = None if failed else round(min(1.0, max(0.0, (parent[1] if parent else 0.5)
                                                           + rng.uniform(-0.2, 0.21))), 3)
            experiment = Experiment(
                problem=problem.id, parent=None if parent is None else parent[0],
                strategy={path_name: text + f"\n# attempt {at}\n"},
                diff=f"@@ -40 +40 @@\n+# attempt {at}\n", mutation_kind="perturb_constant",
                description=f"attempt {at}: one constant", hypothesis="a nearby value may score",
                outcome=Outcome(status="crash", stderr_tail="ValueError\n") if score is None else
                Outcome(status="ok", score=score, items={n: rng.random() < score for n in ITEMS}),
                author=AUTHORS[at % len(AUTHORS)], created_ms=1_790_000_000_000 + at * 1000)
            batch.append(experiment)
            if score is not None:
                recent.append((experiment.id, score))
                del recent[:-64]
            if len(batch) >= BATCH:
                store.add_many(batch)
                batch = []
        store.add_many(batch)
    return problem


def timed(client: TestClient, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (path, response.status_code, response.text[:200])
    return elapsed, len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=100_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as scratch:
        path = (args.data_dir or Path(scratch)) / "records.sqlite"
        started = time.perf_counter()
        problem = build(path, args.experiments)
        print(f"built {args.experiments:,} experiments in {time.perf_counter() - started:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)")
        with RecordStore.open(path) as store:
            started = time.perf_counter()
            headers = store.load_dag(cache=512).experiment_headers(problem.id)
            baseline = time.perf_counter() - started
            print(f"baseline: open the DAG, read {len(headers):,} experiment headers once: "
                  f"{baseline * 1000:8.0f} ms")
            base = f"/api/problem/{problem.id}"
            pages = {
                "overview": ["/api/version", "/api/overview"],
                "problem": [base, base + "/points", base + "/rates", base + "/changelog"],
                "research DAG": ["/api/overview", base + "/graph"],
                "playbook": ["/api/playbook"],
            }
            for page, paths in pages.items():
                app = dashboard_app(DashboardSource(store=lambda: store),
                                    allowed_hosts=["testserver"])
                with TestClient(app) as client:  # a fresh dashboard: nothing read yet
                    total, size = 0.0, 0
                    for api in paths:
                        elapsed, length = timed(client, api)
                        total, size = total + elapsed, size + length
                        print(f"  {api.replace(problem.id, 'P')[:40]:<40} {elapsed * 1000:8.0f} ms"
                              f" {length / 1000:8.1f} kB")
                    print(f"first paint of {page:<12} {total * 1000:8.0f} ms "
                          f"{size / 1000:8.1f} kB  ({total / baseline:.2f}x the baseline)")
            # external: the new experiments come from another connection (build's)
            app = dashboard_app(DashboardSource(store=lambda: store, refresh_s=0.0,
                                                external=True), allowed_hosts=["testserver"])
            with TestClient(app) as client:
                first = client.get(base + "/points").json()  # the page's first paint
                client.get(base + "/rates")
                full = len(client.get(base + "/changelog?limit=1").content)
                print(f"points on first paint: {len(first['n']):,} of {first['total']:,} "
                      f"(downsampled: {first['downsampled']}); a changelog row ~{full} B")
                build(path, 100, seed=1, start=args.experiments, problem=problem)
                poll = 0.0
                size = 0
                for api in ("/api/version", f"{base}/points?after={first['next']}", base,
                            base + "/rates", base + "/changelog"):
                    elapsed, length = timed(client, api)
                    poll, size = poll + elapsed, size + length
                    print(f"  {api.replace(problem.id, 'P')[:40]:<40} {elapsed * 1000:8.0f} ms"
                          f" {length / 1000:8.1f} kB")
                fresh = client.get(f"{base}/points?after={first['next']}").json()
                print(f"live poll after 100 new experiments: {poll * 1000:.0f} ms, "
                      f"{size / 1000:.1f} kB ({len(fresh['n'])} new points)"
                      f" ({poll / baseline:.2f}x the baseline)")


if __name__ == "__main__":
    main()
