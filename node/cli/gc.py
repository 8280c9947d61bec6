"""The `swarm gc` command: drop old experiments nobody needs from a data directory's store
(the policy is node/retention.py; this module only parses, prints and picks exit codes)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from node.cli.options import (
    EXIT_USAGE,
    DataDir,
    JsonFlag,
    _data_dir,
    _fail,
    _identity,
    _open_store,
    _print_json,
    out,
)

GC_CACHE = 4096  # whole records held while planning (the rest stay in the store)


def gc(
    data_dir: DataDir = None,
    keep_days: Annotated[float | None, typer.Option(
        "--keep-days", min=0, help="Keep experiments made in the last N days.")] = None,
    keep_last: Annotated[int | None, typer.Option(
        "--keep-last", min=0, help="Keep each problem's newest N experiments.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print what would be dropped; change nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Drop old experiments (and peers' verifications of them) that no best lineage, live
    pattern, hypothesis or open claim needs; problems, patterns, hypotheses and this node's own
    verifications always stay. Dropped ids are not fetched again. Stop the node first."""
    from node.retention import Retention, plan
    from node.store import StoreError

    if (keep_days is None) == (keep_last is None):
        _fail("give one of --keep-days N and --keep-last N", EXIT_USAGE)
    retention = Retention(keep_days=keep_days, keep_last=keep_last)
    identity = _identity(data_dir)
    with _open_store(data_dir) as store:
        try:
            before = store.size()
            dag = store.load_dag(cache=GC_CACHE)
            chosen = plan(dag, identity.peer_id, retention, time.time_ns() // 1_000_000)
            dropped = 0
            if not dry_run and chosen.drop:
                dropped = store.drop(chosen.drop)
                store.compact()
            after = store.size()
        except StoreError as error:
            _fail(str(error))
    report = {
        "data_dir": str(_data_dir(data_dir)), "dry_run": dry_run, "records": len(dag),
        "drop": len(chosen.drop), "dropped": dropped, "by_kind": dict(chosen.dropped_kinds),
        "kept_old": dict(chosen.kept_because), "bytes_before": before, "bytes_after": after,
    }
    if as_json:
        _print_json(report)
        return
    kinds = ", ".join(f"{n} {k}s" for k, n in sorted(chosen.dropped_kinds.items())) or "nothing"
    verb = "would drop" if dry_run else "dropped"
    out.print(f"{verb} {len(chosen.drop)} of {len(dag)} records ({kinds})", highlight=False)
    if chosen.kept_because:
        out.print("kept old experiments: " + ", ".join(
            f"{n} ({why})" for why, n in sorted(chosen.kept_because.items())), highlight=False)
    if not dry_run:
        out.print(f"store {before / 2**20:.1f} MB -> {after / 2**20:.1f} MB", highlight=False)
