"""Finding (fixed in session 2026-12-07f: the render now runs in the worker that builds the
view, node/web/app.py `read`): the dashboard (swarm join --dashboard serves it in the node's
own trio nursery) built each view in a worker thread, but turned it into JSON on the trio
thread: the endpoint returned `_Json(found)`, which renders `json_bytes(found)` =
json.dumps(clean(found)), and `clean` passes every string through `untrusted_text.visible`,
which walks the string char by char in Python unless it is ASCII *and* isprintable() -- a
newline makes any strategy, diff or description fail that test. /api/record/<id> of an
experiment carries its strategy (up to 16 files x 256,000 chars) and its diff (256,000 chars).

We time the render as the endpoint runs it (now in its worker thread), on an experiment
record_detail document built by the real view from the victim's store.

    .venv/bin/python bench/event_loop/dashboard_render.py [files] [--controls]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import common

from node.store import RecordStore
from node.web import DashboardSource, views
from node.web.app import _Json
from node.web.state import DashboardState
from research_dag import encode_record


def main(files: int, controls: bool) -> None:
    problem = common.posed_problem(common.package(files))  # bigpkg with `files` mutable files
    if controls:  # any text is a valid file
        strategy = {name: "\x01" * 256_000 for name in problem.mutable}
    else:
        strategy = common.big_strategy(problem, 0)
    # No diff: the view computes it (the record stays <= 4 MiB: syncable).
    claim = common.resigned(common.experiment(problem, strategy, 1, None, score=2.0), diff="")
    print(f"the record: {len(encode_record(claim)) / 2**20:.2f} MiB (a sync response: 4 MiB)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.sqlite"
        common.fill_store(path, [problem, claim])
        with RecordStore.open(path, durable=False) as store:
            state = DashboardState(DashboardSource(store=lambda: store, me="me"))
            with state.lock:
                state.refresh()
                document = views.record_detail(state, claim.id)  # the worker thread's part
            assert document is not None
            t = time.perf_counter()
            response = _Json(document)  # what ran on the trio thread before the fix
            took = time.perf_counter() - t
            kind = " (control chars)" if controls else ""
            print(f"/api/record of a {files}-file experiment{kind}: "
                  f"{len(response.body) / 1e6:.1f} MB of JSON rendered (in the worker) in "
                  f"{took:.2f} s")


if __name__ == "__main__":
    common.run(main, __doc__, files=16, flags=("--controls",))  # control chars: escaped one by one
