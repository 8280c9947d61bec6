"""What a late joiner's wire decode costs a fetch response of 1,024 records: the decode of
f466146 (three canonical encodings a record, nesting scanned on the bytes, base58 per record,
requested ids searched as a list) against today's `decode_sync_response`, in one process.

    .venv/bin/python bench/bench_wire_decode.py [--repeat 7]

The records are the soak's (bench_soak.py: chains on search_ranking, 8 authors, ~3.3 KB each).
Prints the median milliseconds a response of each path, per record, the ratio, and the floor:
the Ed25519 verifications alone (OpenSSL), which no decode can skip.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_soak import EXAMPLE, Records  # noqa: E402

from node.identity import public_key_from_peer_id  # noqa: E402
from node.net.wire import MAX_FETCH_IDS, SyncRecords, decode_sync_response  # noqa: E402
from node.net.wire import encode_sync_response as encode_response  # noqa: E402
from node.problem import load_package  # noqa: E402
from research_dag import (  # noqa: E402
    MAX_PACKAGE_BYTES,
    MAX_RECORD_OBJECTS,
    Record,
    RecordError,
    encode_record,
    msgpack_excess,
    validate_record,
)


def _old_canonical(value: Any, depth_left: int = 16) -> Any:
    """canonical_encode's walk at f466146: a call per value."""
    if isinstance(value, dict | list | tuple):
        if depth_left <= 0:
            raise RecordError("deep")
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                raise RecordError("keys")
            return {key: _old_canonical(value[key], depth_left - 1) for key in sorted(value)}
        return [_old_canonical(item, depth_left - 1) for item in value]
    return value


def _old_encode(value: Any) -> bytes:
    return bytes(msgpack.packb(_old_canonical(value), use_bin_type=True, use_single_float=False))


def _old_unpack(data: bytes, max_objects: int) -> Any:
    if msgpack_excess(data, max_objects=max_objects) is not None:
        raise RecordError("excess")
    return msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=MAX_PACKAGE_BYTES)


def _old_decode_response(message: bytes, requested: list[str]) -> list[Record]:
    """decode_sync_response at f466146, as far as a valid fetch response takes it."""
    raw = _old_unpack(message, 2 * MAX_FETCH_IDS)
    assert _old_encode(raw) == message
    records: list[Record] = []
    seen: set[str] = set()
    for item in raw["records"]:
        record = validate_record(_old_unpack(item, MAX_RECORD_OBJECTS))
        assert _old_encode(record.plain()) == item  # the canonical check
        key = Ed25519PublicKey.from_public_bytes(public_key_from_peer_id(record.author))
        key.verify(record.signature, _old_encode(record.plain(signed=False)))  # verify_record
        record_id = hashlib.sha256(_old_encode(record.plain(signed=False))).hexdigest()  # .id
        assert record_id not in seen and record_id in requested
        seen.add(record_id)
        records.append(record)
    return records


def _new_decode_response(message: bytes, requested: list[str]) -> list[Record]:
    response = decode_sync_response(message, requested=requested)
    assert isinstance(response, SyncRecords)
    return response.records


def _verify_only(records: Sequence[Record]) -> Callable[[], None]:
    signed = [
        (Ed25519PublicKey.from_public_bytes(public_key_from_peer_id(record.author)),
         record.signature, record.canonical_bytes())
        for record in records
    ]

    def run() -> None:
        for key, signature, data in signed:
            key.verify(signature, data)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each path (median)")
    args = parser.parse_args()
    maker = Records(load_package(EXAMPLE))
    records = [maker.next() for _ in range(MAX_FETCH_IDS)]
    message = encode_response(SyncRecords.limited(records))
    requested = sorted(record.id for record in records)
    assert [r.id for r in _old_decode_response(message, requested)] == [r.id for r in records]
    assert [encode_record(r) for r in _new_decode_response(message, requested)] == [
        encode_record(r) for r in records
    ]
    paths: dict[str, Callable[[], object]] = {
        "before (f466146)": lambda: _old_decode_response(message, requested),
        "after": lambda: _new_decode_response(message, requested),
        "Ed25519 alone": _verify_only(records),
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeat):  # interleaved, so load from elsewhere hits every path alike
        for name, run in paths.items():
            began = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - began)
    print(f"a fetch response of {len(records)} records, {len(message) / 2**20:.1f} MiB;"
          f" median of {args.repeat} runs")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        print(f"{name:>18}: {seconds * 1e3:8.1f} ms  {seconds / len(records) * 1e6:6.1f} us/record")
    before, after, floor = (seconds / len(records) * 1e6 for seconds in medians.values())
    print(f"after / before: {after / before:.2f}; above the Ed25519 floor:"
          f" {before - floor:.0f} -> {after - floor:.0f} us/record")


if __name__ == "__main__":
    main()
