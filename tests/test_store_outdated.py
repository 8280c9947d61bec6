"""Records an older version stored that today's schema refuses (issue 8, finding 1: strategy keys
once had no path rules) are skipped with a count and a log line, never loaded, never a crash;
a body that was altered is still reported as corruption."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

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
    before, after = _good("# before\n"), _good("# after\n")
    outdated_id, body = _old_rules_claim()
    with RecordStore.open(path) as store:
        store.add(before)
    _insert(path, outdated_id, body)
    with RecordStore.open(path) as store:
        store.add(after)
        with caplog.at_level(logging.WARNING, logger="node.store"):
            dag = store.load_dag()
            assert [r.id for r in store.iter_records()] == [before.id, after.id]
        assert {r.id for r in dag.records()} == {before.id, after.id}
        assert store.get(outdated_id) is None
        assert store.outdated == {outdated_id}
        assert [r.message.count(outdated_id) for r in caplog.records] == [1]  # logged once


def test_an_outdated_body_under_another_id_is_still_corruption(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    with RecordStore.open(path):
        pass
    _, body = _old_rules_claim()
    _insert(path, "2" * 64, body)
    with RecordStore.open(path) as store, pytest.raises(StoreCorrupt, match="does not decode"):
        store.load_dag()


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
    with RecordStore.open(path):
        pass
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO records (id, kind, problem, created_ms, body) VALUES (?, ?, ?, ?, ?)",
        (interim_id, "problem", interim_id, 0, canonical_encode({**raw, "signature": b""})),
    )
    db.commit()
    db.close()
    with RecordStore.open(path) as store:
        assert list(store.load_dag().records()) == []
        assert store.outdated == {interim_id}
