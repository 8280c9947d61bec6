"""The float test vectors of docs/protocol.md (section 4) are what our encoder produces, decode
on the wire path, and their integer-collapsed forms (what a JavaScript msgpack library writes for
1.0) are refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgpack
import pytest

from node.identity import Identity, sign_record, verify_record
from node.net.wire import WireError, decode_batch
from research_dag import (
    Experiment,
    Metric,
    Outcome,
    Pattern,
    Problem,
    Record,
    canonical_encode,
    encode_record,
)

DOC = Path(__file__).parent.parent / "docs" / "protocol.md"
SEED = bytes.fromhex("7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d")
CREATED = 1_700_000_000_000
# The records the vectors encode, as the document describes them in words.
RECORDS: dict[str, Record] = {
    "experiment": Experiment(
        problem="22" * 32,
        strategy={"strategy.py": "x = 1\n"},
        outcome=Outcome(status="ok", score=1.0, strategy_fuel=1000, evaluator_fuel=2000,
                        details={"n": 3, "neg": -0.0, "ratio": 2.0}),
        created_ms=CREATED,
    ),
    "problem": Problem(
        name="p", statement="s", metric=Metric(name="m", direction="maximize", target=1.0),
        mutable=["strategy.py"], files={"evaluate.py": b"", "strategy.py": b"x = 1\n"},
        created_ms=CREATED,
    ),
    "pattern": Pattern(mutation_kind="prune_list", text="t", success_rate=1.0, mean_delta=0.0,
                       created_ms=CREATED),
}
_VECTOR = re.compile(
    r"```\nvector (?P<name>\w+)\nid (?P<id>[0-9a-f]{64})\nbytes (?P<size>\d+)\n"
    r"(?P<hex>[0-9a-f\n]+)```"
)


def vectors() -> dict[str, dict[str, str]]:
    return {m["name"]: m.groupdict() for m in _VECTOR.finditer(DOC.read_text())}


def _block(name: str, record: Record) -> str:
    data = encode_record(record).hex()
    lines = "\n".join(data[start : start + 96] for start in range(0, len(data), 96))
    return f"```\nvector {name}\nid {record.id}\nbytes {len(data) // 2}\n{lines}\n```"


def _signed(name: str) -> Record:
    return sign_record(RECORDS[name], Identity.from_seed(SEED))


def _envelope(item: bytes) -> bytes:
    return canonical_encode({"records": [item], "v": 1})


def test_the_document_holds_one_vector_per_record() -> None:
    assert sorted(vectors()) == sorted(RECORDS)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_vector_is_what_our_encoder_writes(name: str) -> None:
    signed = _signed(name)
    assert _block(name, signed) in DOC.read_text(), "update docs/protocol.md:\n" + _block(
        name, signed
    )


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_vector_decodes_on_the_wire_to_its_id(name: str) -> None:
    vector = vectors()[name]
    data = bytes.fromhex(vector["hex"].replace("\n", ""))
    assert len(data) == int(vector["size"])
    (record,) = decode_batch(_envelope(data))
    assert record.id == vector["id"]
    assert verify_record(record)
    assert encode_record(record) == data


def _whole_floats_as_ints(value: Any) -> tuple[Any, int]:
    """`value` with each integral float written as an int (what JS libraries do), and how many."""
    if isinstance(value, float) and value.is_integer():
        return int(value), 1
    if isinstance(value, dict):
        changed = {key: _whole_floats_as_ints(item) for key, item in value.items()}
        return {key: item for key, (item, _) in changed.items()}, sum(
            n for _, n in changed.values()
        )
    return value, 0


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_whole_floats_written_as_integers_are_refused(name: str) -> None:
    data = bytes.fromhex(vectors()[name]["hex"].replace("\n", ""))
    collapsed, count = _whole_floats_as_ints(msgpack.unpackb(data, raw=False))
    assert count >= 1  # every vector holds whole-number floats
    with pytest.raises(WireError, match="not canonically encoded") as refused:
        decode_batch(_envelope(msgpack.packb(collapsed, use_bin_type=True)))
    assert refused.value.reason == "invalid_record"


def test_an_integer_written_as_a_float_is_refused() -> None:
    data = bytes.fromhex(vectors()["experiment"]["hex"].replace("\n", ""))
    raw = msgpack.unpackb(data, raw=False)
    raw["outcome"]["strategy_fuel"] = 1000.0
    with pytest.raises(WireError) as refused:
        decode_batch(_envelope(msgpack.packb(raw, use_bin_type=True)))
    assert refused.value.reason == "invalid_record"
