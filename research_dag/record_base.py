"""What every record is built on: the size bounds, the frozen strict model (`Frozen`) and
`RecordBase`, which names a record by the sha256 of its canonical bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from research_dag.canonical import canonical_encode

# Bounds keep a hostile peer or guest from inflating memory with one record.
MAX_TEXT = 4_000
MAX_NAME = 200
MAX_ID = 64
MAX_AUTHOR = 128
MAX_SIGNATURE = 512
MAX_SOURCE = 256_000
# Under the 4 MiB sync response limit, so any problem can travel by sync (docs/protocol.md).
MAX_PACKAGE_BYTES = 3 * 1024 * 1024
MAX_LIST = 256
MAX_STDERR_TAIL = 4_000
MAX_MUTABLE = 16
MAX_FILES = 4096
# More msgpack objects than any valid record holds (a Problem of MAX_FILES files is ~8,500:
# a key and a value per file, plus its lists), so the nesting scan stops there instead of
# walking millions of tiny objects a hostile record packs into 4 MiB. Raise it with the bounds.
MAX_RECORD_OBJECTS = 4 * MAX_FILES + 4 * MAX_LIST
MAX_U63 = 2**63 - 1  # integers stay within msgpack's 64-bit forms
# What msgpack's integer formats hold at all (int64 and uint64): a value outside cannot be
# encoded (docs/protocol.md section 4, "Integers").
MIN_I64, MAX_U64 = -(2**63), 2**64 - 1

RecordId: TypeAlias = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# The author of records the playbook curator derives (Pattern, Hypothesis, Verdict): they are a
# function of the records they cite, unsigned, and every node recomputes them rather than
# trusting them (docs/protocol.md, "Derived records"; ARCHITECTURE.md section 7).
DERIVED_AUTHOR = "derived"
ShortText: TypeAlias = Annotated[str, Field(max_length=MAX_NAME)]
Text: TypeAlias = Annotated[str, Field(max_length=MAX_TEXT)]


def is_utf8(text: str) -> bool:
    """Can `text` be written as UTF-8 (no lone surrogates, which a JSON `\\ud800` escape
    gives)? msgpack refuses to encode such a string."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Frozen(BaseModel):
    """Base of every record part: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class RecordBase(Frozen):
    """Fields every record has. `signature` is excluded from the canonical bytes it signs."""

    author: Annotated[str, Field(max_length=MAX_AUTHOR)] = "local"
    created_ms: Annotated[int, Field(ge=0, le=MAX_U63)] = 0
    signature: Annotated[bytes, Field(max_length=MAX_SIGNATURE)] = b""

    # Fields added after wire version 1 was published: left out of the encoding while they
    # hold None, so every record made before they existed keeps its bytes, id and signature
    # (docs/protocol.md, section 4, "Added fields").
    ADDED_FIELDS: ClassVar[frozenset[str]] = frozenset()

    def plain(self, *, signed: bool = True) -> dict[str, Any]:
        """The record as the plain values its encoding holds (without the signature unless
        `signed`)."""
        exclude = {name for name in self.ADDED_FIELDS if getattr(self, name) is None}
        if not signed:
            exclude.add("signature")
        return self.model_dump(mode="python", exclude=exclude)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with `update`, a new record whose id and encoding are computed afresh (never
        the cached ones of the original)."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy.__dict__.pop("_id_cache", None)
            copy.__dict__.pop("_encoded_cache", None)
        return copy

    def canonical_bytes(self) -> bytes:
        """The bytes the id and signature cover: msgpack, sorted keys, no signature."""
        return canonical_encode(self.plain(signed=False))

    @property
    def id(self) -> str:
        # Cached per instance: records are frozen, so the id never changes.
        cached = self.__dict__.get("_id_cache")
        if cached is None:
            cached = hashlib.sha256(self.canonical_bytes()).hexdigest()
            object.__setattr__(self, "_id_cache", cached)
        return str(cached)

    def short_id(self) -> str:
        return self.id[:10]
