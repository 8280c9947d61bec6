"""Records an older version stored that today's schema refuses (issue 8, finding 1: strategy keys
once had no path rules) are skipped with a count and a log line, never loaded, never a crash;
a body that was altered is still reported as corruption. Such rows come from files older
versions wrote: each test puts one into a real version 2 file (tests/fixtures/store_v2.sqlite)
in that version's layout, and the store upgrades the file when it opens it."""

from __future__ import annotations

import hashlib
import logging
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_store_serving import V2_FIXTURE

from node.identity import Identity, sign_record
from node.store import RecordStore, StoreCorrupt
from research_dag import Experiment, Metric, Outcome, Problem, canonical_encode

AUTHOR = Identity.from_seed(b"\x21" * 32)


def _old_rules_claim() -> tuple[str, bytes]:
    """An experiment as an older node stored it: signed, intact, its strategy key a path
    today's schema refuses."""
    raw: dict[str, Any] = Experiment(
        problem="1" * 64, strategy={"strategy.py": "x = 1\n"}, outcome=Outcome(status="ok"),
        author=AUTHOR.peer_id,
    ).model_dump(mode="python", exclude={"signature"})
    raw["strategy"] = {"../../../../tmp/x": "x = 1\n"}
    unsigned = canonical_encode(raw)
    body = canonical_encode({**raw, "signature": AUTHOR.sign(unsigned)})
    return hashlib.sha256(unsigned).hexdigest(), body


def _insert(path: Path, record_id: str, body: bytes) -> None:
    """A row as the version 2 store wrote one (id and kind as text, full bytes)."""
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO records (id, kind, problem, created_ms, body) VALUES (?, ?, ?, ?, ?)",
        (record_id, "experiment", "1" * 64, 0, body),
    )
    db.commit()
    db.close()


def _good(tag: str) -> Experiment:
    signed = sign_record(
        Experiment(problem="1" * 64, strategy={"strategy.py": tag}, outcome=Outcome(status="ok")),
        AUTHOR,
    )
    assert isinstance(signed, Experiment)
    return signed


def test_an_outdated_record_is_skipped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "records.sqlite"
    shutil.copy(V2_FIXTURE, path)
    after = _good("# after\n")
    outdated_id, body = _old_rules_claim()
    _insert(path, outdated_id, body)
    with caplog.at_level(logging.WARNING, logger="node.store"), RecordStore.open(path) as store:
        held = {r.id for r in store.iter_records()}
        store.add(after)
        for dag in (store.load_dag(), store.load_dag(cache=4)):
            assert {r.id for r in dag.records()} == held | {after.id}
            assert outdated_id not in dag and outdated_id not in dag.ids()
        assert outdated_id not in held and len(held) == 26
        assert store.get(outdated_id) is None and store.encoded_many([outdated_id]) == []
        assert store.outdated == {outdated_id}
    assert sum(r.message.count(outdated_id) for r in caplog.records) == 1  # logged once
    with RecordStore.open(path) as store:  # the row stays, known as outdated
        assert store.outdated == {outdated_id} and store.count() == 27


def test_an_outdated_body_under_another_id_is_still_corruption(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    shutil.copy(V2_FIXTURE, path)
    _, body = _old_rules_claim()
    _insert(path, "2" * 64, body)
    with pytest.raises(StoreCorrupt, match="does not decode"):
        RecordStore.open(path)
    db = sqlite3.connect(path)  # the upgrade was rolled back: the file is as it was
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()


def test_a_record_that_now_hashes_differently_is_skipped_not_corrupt(tmp_path: Path) -> None:
    """Interim builds encoded an unset Problem.generator as nil; today it is left out (an added
    field), so such a stored problem decodes to a record with another id: not this one."""
    problem = Problem(name="p", statement="s", metric=Metric(name="m", direction="maximize"),
                      mutable=["strategy.py"], files={"strategy.py": b"x = 1\n"})
    raw = {**problem.model_dump(mode="python", exclude={"signature"}), "generator": None}
    unsigned = canonical_encode(raw)
    interim_id = hashlib.sha256(unsigned).hexdigest()
    assert interim_id != problem.id
    path = tmp_path / "records.sqlite"
    shutil.copy(V2_FIXTURE, path)
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO records (id, kind, problem, created_ms, body) VALUES (?, ?, ?, ?, ?)",
        (interim_id, "problem", interim_id, 0, canonical_encode({**raw, "signature": b""})),
    )
    db.commit()
    db.close()
    with RecordStore.open(path) as store:
        assert interim_id not in {r.id for r in store.load_dag(cache=4).records()}
        assert store.outdated == {interim_id}
