"""Canonical msgpack, the one encoding of every record and message, and the nesting bound that
is checked (on bytes or on values, iteratively) before anything recurses into hostile input."""

from __future__ import annotations

from typing import Any, Literal

import msgpack

# Records nest 3 deep (a record, its outcome, the outcome's details) and wire messages 2; the
# bound leaves room for growth and stays far below Python's recursion limit (1000), which
# canonical encoding once hit at ~500 levels from a 507-byte message (issue 8, finding 11).
MAX_NESTING = 16

# Bytes following a header byte, for formats whose size the header fixes.
_FIXED = {
    0xC0: 0, 0xC2: 0, 0xC3: 0,  # nil, false, true
    0xCA: 4, 0xCB: 8,  # float32, float64
    0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,  # uint8..64
    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,  # int8..64
    0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17,  # fixext 1..16: type byte + data
}
# Formats followed by a big-endian length of this many bytes, then that many bytes
# (ext: one more, its type).
_SIZED = {
    0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0),  # bin8..32
    0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),  # ext8..32
    0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0),  # str8..32
}
# Containers with a big-endian count of this many bytes; maps hold two objects per entry.
_CONTAINERS = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}
# Every byte that cannot open an array or a map (fixmap, fixarray, array16/32, map16/32).
_NOT_CONTAINER = bytes(b for b in range(256) if not (0x80 <= b <= 0x9F or b in _CONTAINERS))


def nesting_exceeds(data: bytes, limit: int = MAX_NESTING) -> bool:
    """True when the first msgpack object in `data` nests arrays and maps more than `limit`
    deep (a scalar is depth 0, `[]` and `[1]` depth 1, `[[1]]` depth 2).

    Iterative and O(len(data)): it visits each object once and skips string and binary
    payloads by their length. Malformed or truncated bytes give False as soon as the scan
    cannot go on; the decoder that runs next refuses them with its own error.
    """
    return msgpack_excess(data, limit) == "deep"


def msgpack_excess(
    data: bytes, limit: int = MAX_NESTING, max_objects: int | None = None
) -> Literal["deep", "many"] | None:
    """"deep" when the first msgpack object in `data` nests more than `limit` deep (as for
    `nesting_exceeds`), "many" when the walk meets more than `max_objects` objects first,
    else None.

    The walk costs ~0.3 us an object in Python: 4 MiB of empty arrays held it for 1.2 s (0.15 s
    for a 512 KiB gossip envelope) before msgpack refused the message. A caller whose valid
    input holds fewer objects stops it at `max_objects`. The walk runs only when `data` holds
    more container headers than `limit`; with fewer, msgpack's own length limits bound what it
    builds.
    """
    # Each level needs a header byte of its own: with no more such bytes than `limit` anywhere
    # (a record's text is mostly ASCII), the walk is not needed. Counted in C: the walk costs
    # ~0.2 us an object, half of decoding a small record before its signature check.
    if len(data.translate(None, _NOT_CONTAINER)) <= limit:
        return None
    view = memoryview(data)
    end = len(view)
    position = 0
    pending: list[int] = []  # objects still to read in each open container, innermost last
    objects = 0
    while position < end:
        header = view[position]
        position += 1
        count = 0
        if header <= 0x7F or header >= 0xE0:  # positive and negative fixint
            pass
        elif header <= 0x8F:  # fixmap
            count = 2 * (header & 0x0F)
        elif header <= 0x9F:  # fixarray
            count = header & 0x0F
        elif header <= 0xBF:  # fixstr
            position += header & 0x1F
        elif header in _FIXED:
            position += _FIXED[header]
        elif header in _SIZED:
            width, extra = _SIZED[header]
            if position + width > end:
                return None
            position += width + extra + int.from_bytes(view[position : position + width], "big")
        elif header in _CONTAINERS:
            width, per_entry = _CONTAINERS[header]
            if position + width > end:
                return None
            count = per_entry * int.from_bytes(view[position : position + width], "big")
            position += width
        else:  # 0xC1: never used
            return None
        objects += 1
        if max_objects is not None and objects > max_objects:
            return "many"
        is_container = header in _CONTAINERS or 0x80 <= header <= 0x9F
        if is_container and count:
            if len(pending) + 1 > limit:
                return "deep"
            pending.append(count)
            continue
        if is_container and len(pending) + 1 > limit:
            return "deep"
        # A complete object: it fills one slot of each enclosing container that it completes.
        while pending:
            pending[-1] -= 1
            if pending[-1]:
                break
            pending.pop()
        if not pending:
            return None
    return None


class RecordError(ValueError):
    """Bytes or a value that is not a valid record; the message says which field and why."""


def canonical_encode(value: Any) -> bytes:
    """Canonical msgpack: maps with sorted keys, floats always 64-bit, bytes as bin.

    RecordError for a map key that is not a string or nesting deeper than MAX_NESTING (also a
    value that contains itself), so a hostile value never exhausts the interpreter's stack.
    """
    return pack_canonical(canonical_values(value))


def canonical_values(value: Any) -> Any:
    """`value` as `canonical_encode` packs it: every map a new dict with its keys sorted (lists
    copied), RecordError as there. For a caller that packs the values more than one way."""
    return _canonical(value, MAX_NESTING)


def pack_canonical(values: Any) -> bytes:
    """msgpack of values already in canonical order (from `canonical_values`)."""
    packed: bytes = msgpack.packb(values, use_bin_type=True, use_single_float=False)
    return packed


_VALUE_CONTAINERS = (dict, list, tuple)


def _canonical(value: Any, depth_left: int) -> Any:
    # Recurses only into containers, so a record's scalars cost one isinstance each (this runs
    # for every record a node decodes, hashes or sends: ~2x faster than a call per value).
    if not isinstance(value, _VALUE_CONTAINERS):
        return value
    if depth_left <= 0:
        raise RecordError(f"arrays and maps nest more than {MAX_NESTING} deep")
    inner = depth_left - 1
    nested = _VALUE_CONTAINERS
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise RecordError("map keys must be strings")
        return {
            key: _canonical(item, inner) if isinstance(item := value[key], nested) else item
            for key in sorted(value)
        }
    return [_canonical(item, inner) if isinstance(item, nested) else item for item in value]


def nests_deeper(value: Any, limit: int = MAX_NESTING) -> bool:
    """`nesting_exceeds` for values already built: iterative, so a value nested (or containing
    itself) beyond any depth costs a bounded walk, never the interpreter's stack."""
    if not isinstance(value, _VALUE_CONTAINERS):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, _VALUE_CONTAINERS):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False
