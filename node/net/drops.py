"""Why an incoming message is dropped: `WireError` classifies bad bytes by reason, and a
`DropCounter` counts the drops of a node (or a peer) by those reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

# "inconsistent": a valid, signed record that contradicts one the node holds (node/intake.py);
# "topic": a valid envelope holding a record that does not belong on the topic it came on;
# "underived": a peer's Pattern, Hypothesis or Verdict this node does not derive (not stored);
# "disk": a valid record not stored because the disk is at the node's reserve (one per record);
# "ahead": a valid record dated more than 10 minutes past the node's clock (taken once due);
# "catalogue": a stranger's valid problem past what the node holds of others' (node/catalogue.py).
DropReason: TypeAlias = Literal[
    "oversize", "malformed", "version", "signature", "invalid_record", "inconsistent", "topic",
    "underived", "disk", "ahead", "catalogue",
]
DROP_REASONS: tuple[DropReason, ...] = (
    "oversize", "malformed", "version", "invalid_record", "signature", "topic", "inconsistent",
    "underived", "disk", "ahead", "catalogue",
)


class WireError(Exception):
    """Bytes that are not a valid message; `reason` classifies it for drop counts."""

    def __init__(self, message: str, reason: DropReason = "malformed") -> None:
        super().__init__(message)
        self.reason: DropReason = reason


@dataclass(frozen=True)
class DropCounter:
    """How many incoming messages were dropped, by reason (one counter per caller or peer)."""

    counts: Counter[DropReason] = field(default_factory=Counter)

    def add(self, reason: DropReason) -> None:
        self.counts[reason] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_reason(self) -> dict[str, int]:
        """Every reason in protocol order, zeros included (what `swarm status` shows)."""
        return {reason: self.counts[reason] for reason in DROP_REASONS}
