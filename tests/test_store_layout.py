"""Tests of how schema version 3 lays an attempt out (issue 10: <= 0.3 KB an attempt), on real
SQLite files: a diff left out is rebuilt exactly, an ok score comes back from its column, bodies
deflated with their problem's dictionary read back byte for byte, a child's diff survives its
parent being dropped, and a real version 3 file (tests/fixtures/store_v3.sqlite) keeps reading
back and serving exactly its records.

    .venv/bin/python tests/test_store_layout.py   # writes tests/fixtures/store_v3.sqlite
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from test_store_blobs import LINES, PROBLEM

from node.identity import Identity, sign_record
from node.mutators.patch import make_diff
from node.store import RecordStore
from node.store_rows import OK_SCORE, PROBLEM_WORDS, REBUILT_DIFF, STRIPPED, rebuilt_diff
from node.store_words import SAMPLES
from research_dag import (
    Change,
    Experiment,
    Hypothesis,
    Outcome,
    Pattern,
    Record,
    ResearchDag,
    Verification,
    encode_record,
)

AUTHOR = Identity.from_seed(b"\x44" * 32)
V3_FIXTURE = Path(__file__).parent / "fixtures" / "store_v3.sqlite"
LENGTH = 2 * SAMPLES + 6  # attempts in the fixture: its problem gets its dictionary


def signed(record: Record) -> Record:
    return sign_record(record, AUTHOR)


def attempt(parent: Experiment | None, step: int, *, diff: str | None = None,
            score: float | None = None, status: str = "ok") -> Experiment:
    """A child as the loop makes one: one line changed, the diff make_diff writes (unless
    `diff`), an outcome, a change in the shared vocabulary."""
    lines = list(LINES) if parent is None else parent.strategy["strategy.py"].splitlines(True)
    lines[step * 7 % len(lines)] = f"WEIGHT_{step} = {step}.25  # changed at step {step}\n"
    files = {"strategy.py": "".join(lines), "extra.py": "X = 1\n" if step % 5 else f"X = {step}\n"}
    made = Experiment(
        problem=PROBLEM.id, parent=None if parent is None else parent.id, strategy=files,
        diff=(make_diff(parent.strategy, files) if parent is not None else "") if diff is None
        else diff,
        mutation_kind="perturb_constant", description=f"WEIGHT_{step}: -> {step}.25",
        changes=[Change(operation="perturb", affordance="constant", site=f"WEIGHT_{step}")],
        outcome=Outcome(status=status, score=float(step) / 3 if score is None else score,
                        strategy_fuel=1000 + step) if status == "ok"
        else Outcome(status="crash", stderr_tail="ValueError: bad\n"),
        author=AUTHOR.peer_id, created_ms=1_700_000_000_000 + step)
    result = signed(made)
    assert isinstance(result, Experiment)
    return result


def v3_records() -> list[Record]:
    """What tests/fixtures/store_v3.sqlite holds, in the order it was stored: a problem, a
    lineage of attempts (diffs rebuilt, crashes, scores 0.0 and -0.0, one diff of another
    shape), a verification, a pattern citing two attempts, a hypothesis."""
    made: list[Experiment] = []
    for step in range(LENGTH):
        parent = made[step - 1 - step % 3] if made and step % 11 else (made[-1] if made else None)
        made.append(attempt(parent, step, score={7: 0.0, 8: -0.0}.get(step),
                            status="crash" if step % 6 == 5 else "ok",
                            diff="@@ a diff no tool made @@\n" if step == 9 else None))
    check = signed(Verification(experiment=made[-1].id, outcome=made[-1].outcome, match=True,
                                author=AUTHOR.peer_id))
    pattern = Pattern(mutation_kind="perturb_constant", text="perturbing helps",
                      supporting=[made[3].id, made[4].id], created_ms=5)
    hypothesis = Hypothesis(pattern=pattern.id, problem=PROBLEM.id,
                            mutation_kind="perturb_constant", text="try it", created_ms=6)
    return [signed(PROBLEM), *made, check, pattern, hypothesis]


def write_fixture(path: Path) -> None:
    records = v3_records()
    with RecordStore.open(path) as store:
        # The last attempt before its parent (a row named first, filled in later), the rest in
        # batches of 16 as a node's intake stores them.
        store.add(records[-5])
        for start in range(0, len(records), 16):
            store.add_many(records[start : start + 16])
        store.set_meta("iteration", b"3")
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()


def layouts(path: Path) -> list[int]:
    with sqlite3.connect(path) as raw:
        found = [bytes(body)[0] for (body,) in raw.execute(
            "SELECT body FROM records WHERE kind = 2 ORDER BY seq")]
    raw.close()
    return found


def test_a_version_3_store_reads_back_and_serves_exactly_its_records(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    shutil.copy(V3_FIXTURE, path)
    records = v3_records()
    with RecordStore.open(path) as store:
        assert store.get_meta("iteration") == b"3"
        loaded = sorted(store.iter_records(), key=lambda r: r.id)
        assert [encode_record(r) for r in loaded] == [
            encode_record(r) for r in sorted(records, key=lambda r: r.id)]
        signed_ids = [r.id for r in records if r.signature]
        assert dict(store.encoded_many(r.id for r in records)) == {
            r.id: encode_record(r) for r in records if r.id in signed_ids}
        dag = store.load_dag(cache=4)
        assert dag.snapshot() == ResearchDag(records).snapshot()
        child = attempt(records[-4], 99)  # type: ignore[arg-type]
        assert store.add(child)
    with RecordStore.open(path) as store:
        assert store.get(child.id) == child
    found = layouts(path)
    assert all(layout - STRIPPED & PROBLEM_WORDS for layout in found)
    # All but the baseline, the diff of another shape and the attempt stored before its parent
    # (the child just added counts).
    assert sum(1 for layout in found if layout - STRIPPED & REBUILT_DIFF) == LENGTH + 1 - 3


def test_each_attempt_leaves_out_what_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    write_fixture(path)
    records = v3_records()
    early = records[-5]  # stored before its parent: nothing to rebuild its diff from then
    with sqlite3.connect(path) as raw:
        by_id = {bytes(i).hex(): bytes(body)[0] for i, body in raw.execute(
            "SELECT id, body FROM records WHERE kind = 2")}
    raw.close()
    for record in records:
        if not isinstance(record, Experiment):
            continue
        flags = by_id[record.id] - STRIPPED
        assert flags & PROBLEM_WORDS  # the first attempts too, once the dictionary was made
        assert bool(flags & REBUILT_DIFF) == (record.parent is not None and record is not early
                                              and record.diff.startswith("--- a/"))
        ok = record.outcome.status == "ok" and record.outcome.score not in (None, 0.0)
        assert bool(flags & OK_SCORE) == ok  # -0.0 and 0.0 stay in the body


def test_a_childs_diff_outlives_its_dropped_parent(tmp_path: Path) -> None:
    records = v3_records()
    experiments = [r for r in records if isinstance(r, Experiment)]
    path = tmp_path / "records.sqlite"
    with RecordStore.open(path) as store:
        store.add_many(records)
        dropped = experiments[10:40]
        assert store.drop(r.id for r in dropped) == len(dropped)
        store.compact()
    with RecordStore.open(path) as store:  # cold caches: every file from its deltas
        kept = [r for r in records if r not in dropped]
        assert [store.get(r.id) for r in kept] == kept
        assert store.encoded_many(r.id for r in kept if r.signature) == [
            (r.id, encode_record(r)) for r in kept if r.signature]


@settings(max_examples=60, deadline=None)
@given(old=st.text(alphabet="ab\n\x0c\r", max_size=40), new=st.text(alphabet="ab\n\x0c\r",
                                                                     max_size=40))
def test_the_stored_diff_rule_is_the_mutators_diff(old: str, new: str) -> None:
    """If the mutators' diff ever changes, stored bodies still need today's: a frozen copy."""
    for before, after in (({"a.py": old}, {"a.py": new}), ({"a.py": old}, {"b.py": new})):
        assert rebuilt_diff(before, after) == make_diff(before, after)


@settings(max_examples=20, deadline=None)
@given(lines=st.integers(1, 3000), every=st.integers(1, 50), extra=st.integers(0, 3000))
@example(lines=200, every=50, extra=0)  # a small edit of a small strategy: left out
@example(lines=3000, every=1, extra=0)  # the attack's shape: stored whole
def test_a_diff_is_left_out_only_when_rebuilding_it_is_cheap(
    tmp_path_factory: pytest.TempPathFactory, lines: int, every: int, extra: int
) -> None:
    """The class of a peer's pair of experiments whose diff costs difflib seconds to rebuild
    (9,000 lines, one inserted after each: 10 s at every read, under the store's lock): a diff
    is left out only within REBUILT_DIFF_CHARS and REBUILT_FILES_CHARS; every other pair is
    stored whole, and each reads back exactly."""
    from node.store_bodies import REBUILT_DIFF_CHARS, REBUILT_FILES_CHARS

    old = "".join(f"{i}\n" for i in range(lines))
    new = "".join(f"{i}\nx{i}\n" if i % every == 0 else f"{i}\n" for i in range(lines))
    new += "#" * extra + "\n"
    parent = signed(attempt(None, 0).model_copy(update={"strategy": {"strategy.py": old}}))
    assert isinstance(parent, Experiment)
    child = signed(parent.model_copy(update={
        "parent": parent.id, "strategy": {"strategy.py": new}, "created_ms": 1,
        "diff": make_diff({"strategy.py": old}, {"strategy.py": new})}))
    assert isinstance(child, Experiment)
    path = tmp_path_factory.mktemp("store") / "records.sqlite"
    with RecordStore.open(path) as store:
        store.add_many([PROBLEM, parent, child])
    with sqlite3.connect(path) as raw:
        [(body,)] = raw.execute("SELECT body FROM records WHERE id = ?", (bytes.fromhex(child.id),))
    raw.close()
    left_out = bytes(body)[0] >= STRIPPED and bool(bytes(body)[0] - STRIPPED & REBUILT_DIFF)
    cheap = (len(child.diff) <= REBUILT_DIFF_CHARS
             and len(old) + len(new) <= REBUILT_FILES_CHARS)
    assert left_out == cheap
    with RecordStore.open(path) as store:
        assert encode_record(store.get(child.id)) == encode_record(child)  # type: ignore[arg-type]


@pytest.mark.parametrize("score", [0.0, -0.0, 1e-300, -2.5, 1e300])
def test_scores_come_back_exactly(tmp_path: Path, score: float) -> None:
    parent = attempt(None, 0)
    child = attempt(parent, 1, score=score)
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        store.add_many([parent, child])
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        assert encode_record(store.get(child.id)) == encode_record(child)  # type: ignore[arg-type]


if __name__ == "__main__":
    V3_FIXTURE.unlink(missing_ok=True)
    write_fixture(V3_FIXTURE)
    print(f"wrote {V3_FIXTURE} ({V3_FIXTURE.stat().st_size} bytes)")
