"""A stranger's bytes at every parser that reads them (wire, records, a problem's manifest, what a
strategy or evaluator prints), fed arbitrary and adversarial values: only the documented error
comes out, or a recorded failure, and every value a schema takes can be encoded. The model's
replies, the dashboard and the CLI are in tests/test_untrusted_replies.py."""

from __future__ import annotations

import contextlib
import json
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from node.llm import parse_request
from node.net.decoded import DecodedMessages
from node.net.wire import (
    DropCounter,
    WireError,
    decode_batch,
    decode_or_count,
    decode_sync_request,
    decode_sync_response,
)
from node.problem import (
    MAX_MANIFEST_DOTS,
    ManifestError,
    PackageError,
    fixed_sites,
    load_package,
    parse_manifest,
)
from research_dag import (
    Experiment,
    Outcome,
    RecordError,
    canonical_encode,
    decode_record,
    encode_record,
    encoded_record_id,
    validate_record,
)
from sandbox import Evaluator, GuestRun, Runtime
from sandbox.drivers import EXIT_DONE, MARKER
from sandbox.heuristic import _weights, fuel_slices

PROBE = Path(__file__).parent / "fixtures" / "probe"
PROBLEM_ID = "ab" * 32

# Values a stranger's JSON or msgpack can hold, nastiest first: lone surrogates, integers past
# 64 bits (and past any float), NaN and infinities, bytes, ext types, nested containers.
NASTY_TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["\ud800", "a\udfff", "\udc00\ud800"]))
NASTY_INT = st.one_of(st.integers(-(2**64), 2**65), st.sampled_from([2**63, 2**64, -(2**63) - 1,
                                                                     10**400, -(10**400)]))
SCALARS = st.one_of(st.none(), st.booleans(), NASTY_INT, st.floats(), NASTY_TEXT,
                    st.binary(max_size=8))
JUNK = st.recursive(
    st.one_of(SCALARS, st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4))),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.one_of(NASTY_TEXT, st.binary(max_size=3)), inner, max_size=3),
    max_leaves=8,
)


def _experiment_values() -> dict[str, Any]:
    outcome = Outcome(status="ok", score=1.5, items={"a": True}, details={"n": 3, "s": "x"})
    experiment = Experiment(problem=PROBLEM_ID, strategy={"strategy.py": "x = 1\n"},
                            outcome=outcome)
    return experiment.plain()


# -- Records: what the schema takes, an encoder writes ------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.dictionaries(NASTY_TEXT, JUNK, max_size=4))
def test_any_outcome_the_schema_takes_encodes(details: dict[Any, Any]) -> None:
    """An Outcome took details of 2**70 or "\\ud800" (the one field no annotation bounds) and
    its experiment's id then raised OverflowError or UnicodeEncodeError: now the schema refuses
    what msgpack cannot carry, so a valid record always has an id and bytes."""
    try:
        outcome = Outcome(status="ok", score=1.0, details=details)
    except ValidationError:
        return
    experiment = Experiment(problem=PROBLEM_ID, strategy={"strategy.py": "x"}, outcome=outcome)
    assert decode_record(encode_record(experiment)) == experiment
    assert len(experiment.id) == 64


FIELDS = ["kind", "author", "created_ms", "signature", "problem", "parent", "strategy", "diff",
          "changes", "outcome", "outcome.score", "outcome.items", "outcome.details",
          "outcome.details.n", "outcome.strategy_fuel", "outcome.stderr_tail", "strategy.x"]


def _replaced(values: dict[str, Any], path: str, junk: Any) -> dict[str, Any]:
    target: Any = values
    *parents, last = path.split(".")
    for part in parents:
        target = target.get(part) if isinstance(target, dict) else None
    if isinstance(target, dict):  # a field replaced before may hold no map any more
        target[last] = junk
    return values


@settings(max_examples=250, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FIELDS), JUNK), min_size=1, max_size=3))
@example([("outcome.details.n", 2**64)])
@example([("outcome.details.n", "\ud800")])
def test_a_record_with_any_field_values_is_a_record_or_a_record_error(
    replacements: list[tuple[str, Any]]
) -> None:
    """Every field of a record replaced by anything a peer (msgpack) or a store row (values)
    can hold: decoding raises RecordError and nothing else, and what it accepts encodes, as
    bytes and inside a gossip envelope and a sync response (WireError, or a counted drop)."""
    values = _experiment_values()
    for path, junk in replacements:
        values = _replaced(values, path, junk)
    try:
        record = validate_record(values)
    except RecordError:
        pass
    else:
        assert decode_record(encode_record(record)) == record
    try:
        data = msgpack.packb(values, use_bin_type=True)
    except (OverflowError, UnicodeEncodeError, TypeError, ValueError):
        return  # no bytes can say this (a 65-bit int, a lone surrogate)
    for decode in (decode_record, encoded_record_id):
        with contextlib.suppress(RecordError):
            decode(data)
    _only_wire_errors(canonical_encode({"records": [data], "v": 1}))


def _only_wire_errors(data: bytes) -> None:
    for count in (decode_or_count, DecodedMessages().envelope):
        drops = DropCounter()
        assert count(data, drops) is not None or drops.total == 1
    for decode in (decode_batch, decode_sync_request, decode_sync_response,
                   lambda raw: DecodedMessages().sync_records(raw, ["0" * 64]),
                   DecodedMessages().sync_summary):
        with contextlib.suppress(WireError):
            decode(data)


SHAPES = {
    "a map keyed by a map": b"\x81\x81\xa1a\x01\x01",
    "a map keyed by an array": b"\x81\x91\x01\x01",
    "a map keyed by bin": b"\x81\xc4\x01k\x01",
    "a map keyed by nil": b"\x81\xc0\x01",
    "every fixext": b"\x85" + b"".join(bytes([0xA1, 0x61 + i, 0xD4 + i, 0x05]) + b"x" * 2**i
                                       for i in range(5)),
    "a timestamp of 3 bytes": b"\x81\xa1a\xc7\x03\xff\x00\x00\x00",
    "a timestamp of 12 bytes past any date": b"\x81\xa1a\xc7\x0c\xff" + b"\xff" * 12,
    "a str32 of 4 GiB in 9 bytes": b"\x81\xa1a\xdb\xff\xff\xff\xff",
    "a bin32 of 4 GiB": b"\xc6\xff\xff\xff\xff",
    "an ext32 of 4 GiB": b"\xc9\xff\xff\xff\xff\x01",
    "an array32 of 4 billion": b"\xdd\xff\xff\xff\xff",
    "a map32 of 4 billion": b"\xdf\xff\xff\xff\xff",
    "a uint64 version": b"\x82\xa1v\xcf" + b"\xff" * 8 + b"\xa7records\x90",
    "a NaN version": b"\x82\xa1v\xcb\x7f\xf8" + b"\x00" * 6 + b"\xa7records\x90",
    "extra data": b"\x82\xa1v\x01\xa7records\x90\x01",
    "a lone surrogate in UTF-8": b"\x81\xa4kind\xa3\xed\xa0\x80",
    "the never-used byte": b"\x81\xa4kind\xc1",
}


@pytest.mark.parametrize("data", SHAPES.values(), ids=SHAPES.keys())
def test_nasty_msgpack_shapes_are_documented_errors_everywhere(data: bytes) -> None:
    """Shapes msgpack's own exceptions (ExtraData, FormatError, StackError, OutOfData) and
    Python's (TypeError for unhashable keys, ValueError for a bad timestamp) come from: alone,
    as a record inside an envelope, and as a record field."""
    for framed in (data, canonical_encode({"records": [data], "v": 1}),
                   b"\x82\xa4kind\xa7problem\xa1x" + data):
        for decode in (decode_record, encoded_record_id):
            with contextlib.suppress(RecordError):
                decode(framed)
        _only_wire_errors(framed)


# -- What an evaluator prints: an outcome, or invalid_output; never a raise --------------------

@pytest.fixture(scope="module")
def probe_evaluator(runtime: Runtime) -> Iterator[Evaluator]:
    with Evaluator(runtime, load_package(PROBE)) as evaluator:
        yield evaluator


def _scored(evaluator: Evaluator, report: bytes) -> Outcome:
    """The outcome the host makes of an evaluator phase that printed `report` (the sandbox's
    own reading of the guest's stdout, without running a guest)."""
    done = GuestRun(EXIT_DONE, None, 1000, MARKER + report + b"\n", False, b"", 1 << 20)
    return evaluator._score(done, done, "")


JSON_SCALARS = st.one_of(st.none(), st.booleans(), NASTY_INT, st.floats(), NASTY_TEXT)
REPORT_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY_TEXT, inner, max_size=3),
    max_leaves=10,
)
REPORTS = st.fixed_dictionaries({"score": st.one_of(st.floats(), NASTY_INT, REPORT_VALUES)},
                                optional={
    "items": st.dictionaries(NASTY_TEXT, st.one_of(st.booleans(), REPORT_VALUES), max_size=4),
    "details": st.dictionaries(NASTY_TEXT, st.one_of(JSON_SCALARS, REPORT_VALUES),
                               max_size=4),
    "valid": st.one_of(st.booleans(), REPORT_VALUES),
})


@settings(max_examples=150, deadline=None)
@given(REPORTS)
@example({"score": 1, "items": {"\ud800": True}})
@example({"score": 1, "details": {"n": 2**70, "s": "\udfff"}})
def test_any_evaluator_report_is_an_outcome_a_record_can_hold(
    probe_evaluator: Evaluator, report: dict[str, Any]
) -> None:
    """An evaluator's `{"items": {"\\ud800": true}}` raised ValidationError out of the
    evaluation (a node stopped on a peer's problem), and `{"details": {"n": 2**70}}` or
    `{"s": "\\udfff"}` made an outcome whose experiment raised when encoded."""
    outcome = _scored(probe_evaluator, json.dumps(report, allow_nan=True).encode())
    assert outcome.status in ("ok", "invalid", "invalid_output")
    experiment = Experiment(problem=PROBLEM_ID, strategy={"strategy.py": "x"}, outcome=outcome)
    assert decode_record(encode_record(experiment)) == experiment


def test_a_hostile_evaluator_is_evaluated_and_recorded(runtime: Runtime, tmp_path: Path) -> None:
    """The whole path, in the sandbox: a report naming items and details by lone surrogates,
    a detail of 2**70 and one of 10**400 (only finite, 64-bit values are kept)."""
    problem = load_package(PROBE)
    evaluate = ('def evaluate(output, public_dir, private_dir):\n'
                '    return {"score": 2.5, "items": {"\\ud800": True, "ok": False},\n'
                '            "details": {"big": 2**70, "huge": 10**400, "s": "\\udfff",\n'
                '                        "\\udc00": 1, "n": -2**63}}\n')
    hostile = problem.model_copy(update={"files": {**problem.files,
                                                   "evaluate.py": evaluate.encode()}})
    with Evaluator(runtime, hostile) as evaluator:
        outcome = evaluator.evaluate({"strategy.py": problem.files["strategy.py"].decode()})
    assert outcome.status == "ok" and outcome.score == 2.5
    assert outcome.items == {"\ufffd": True, "ok": False}
    assert outcome.details == {"s": "\ufffd", "\ufffd": 1, "n": -(2**63)}
    experiment = Experiment(problem=hostile.id, strategy={"strategy.py": "x"}, outcome=outcome)
    assert decode_record(encode_record(experiment)) == experiment


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(NASTY_INT, st.floats(), st.booleans(), st.none(), NASTY_TEXT),
                max_size=70))
def test_any_weights_a_harness_prints_are_refused_or_sliced(weights: list[Any]) -> None:
    """A harness weighing an instance 10**400 (a JSON int has no bound) raised OverflowError
    out of the evaluation, in `math.isfinite`."""
    read = _weights(json.dumps(weights, allow_nan=True).encode())
    if read is not None:
        assert all(math.isfinite(weight) and weight >= 0 for weight in read)
        assert len(fuel_slices(10**10, read)) == len(read)


@settings(max_examples=100, deadline=None)
@given(st.fixed_dictionaries({"kind": st.sampled_from(["complete", "judge", "x"])}, optional={
    "system": REPORT_VALUES, "user": REPORT_VALUES, "question": REPORT_VALUES,
    "output": REPORT_VALUES, "max_tokens": REPORT_VALUES}))
def test_any_model_door_frame_is_a_request_or_a_reason(frame: dict[str, Any]) -> None:
    parsed = parse_request(json.dumps(frame, allow_nan=True).encode())
    assert isinstance(parsed, str) or parsed.prompt_bytes >= 0


# -- A problem's manifest: a package defect, or (a peer's) no fixed sites ----------------------

def _package(tmp_path: Path, manifest: bytes) -> Path:
    package = tmp_path / "package"
    package.mkdir()
    for path in PROBE.rglob("*"):
        target = package / path.relative_to(PROBE)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(path.read_bytes())
    (package / "problem.toml").write_bytes(manifest)
    return package


PROBE_PROBLEM = load_package(PROBE)
ORIGINAL = (PROBE / "problem.toml").read_text()
MANIFESTS = {
    "an integer of 5,000 digits": ORIGINAL.replace("seed = 7", "seed = 1" + "0" * 5_000),
    "a target past any float": ORIGINAL.replace("target = 10", "target = 1" + "0" * 400),
    "a wall time past any float": ORIGINAL.replace("wall_s = 20", "wall_s = -1" + "0" * 400),
    "a key dotted 300 deep": ORIGINAL + "\n" + "a." * 300 + "b = 1\n",
    "a table header dotted 300 deep": ORIGINAL + "\n[" + "a." * 300 + "b]\n",
    "arrays nested 30,000 deep": ORIGINAL + "\nx = " + "[" * 30_000 + "]" * 30_000 + "\n",
}


@pytest.mark.parametrize("manifest", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_a_hostile_manifest_is_a_package_defect_and_no_fixed_sites(
    tmp_path: Path, manifest: str
) -> None:
    """tomllib raised ValueError (int's 4,300-digit limit, not a TOMLDecodeError) and float()
    OverflowError out of `swarm run`; a peer's Problem carrying such a manifest stopped the
    node that joined it (fixed_sites, in the loop's constructor); and a dotted key of n parts
    costs tomllib n**2 (60 KB of `a.` held it 33 s): refused before tomllib reads it."""
    with pytest.raises(PackageError):
        load_package(_package(tmp_path, manifest.encode()))
    peers = PROBE_PROBLEM.model_copy(update={"files": {**PROBE_PROBLEM.files,
                                                       "problem.toml": manifest.encode()}})
    assert fixed_sites(peers) == ()


TOML_PIECES = st.sampled_from(['"', "'", '"""', "'''", "\\", "#", ".", "a", "=", " ", "\n", "[",
                               "]", "{", "}", "1", ",", "e", "\\u0041", "x.y = 2\n"])


@settings(max_examples=400, deadline=None)
@given(st.lists(TOML_PIECES, max_size=40).map("".join))
def test_any_manifest_text_reads_as_tomllib_reads_it_or_is_a_manifest_error(text: str) -> None:
    """The dot count before tomllib never refuses what tomllib reads with few dots, and
    every failure is a ManifestError (a defect naming problem.toml)."""
    try:
        expected: dict[str, Any] | None = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        expected = None
    try:
        assert parse_manifest(text.encode()) == expected
    except ManifestError:
        assert expected is None or text.count(".") > MAX_MANIFEST_DOTS


def test_dots_inside_strings_and_comments_are_not_keys() -> None:
    many = "." * 10_000
    text = (f'statement = "{many}"\nnote = \'{many}\'\n# {many}\n'
            f'long = """\n{many}\n\\"""\n"""\nraw = \'\'\'{many}\'\'\'\n[metric]\ntarget = 1.5\n')
    assert parse_manifest(text.encode())["statement"] == many
    with pytest.raises(ManifestError, match="dots"):
        parse_manifest(("a." * (MAX_MANIFEST_DOTS + 1) + "b = 1").encode())


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_manifest_bytes_are_a_table_or_a_manifest_error(data: bytes) -> None:
    with contextlib.suppress(ManifestError):
        parse_manifest(data)
    problem = PROBE_PROBLEM.model_copy(update={"files": {**PROBE_PROBLEM.files,
                                                         "problem.toml": data}})
    assert isinstance(fixed_sites(problem), tuple)
