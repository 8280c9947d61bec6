"""A table of scores keyed by peer ids, which are free: bounded by dropping the negative
entries nearest zero. A refused record by a fresh identity left one standing and one gossip
score behind for ever (~170 B each, nothing stored, the relay uncharged), so a peer sending
endless identities' records grew a node's memory without limit. Positive entries are earned by
replays we ran and are never dropped here; an author brought back to 0 is a fresh identity
again, which is what dropping it claims, and the most negative (the ignored) are kept last."""

from __future__ import annotations

MAX_TRACKED = 65_536  # entries kept per table (~10 MB)


def bound_negatives(table: dict[str, float], limit: int | None = None) -> None:
    """Past `limit` entries, keep only the `limit // 2` most negative of the negative ones
    (amortised: one sort per `limit // 2` additions at most)."""
    limit = MAX_TRACKED if limit is None else limit
    if len(table) <= limit:
        return
    negatives = sorted((score, key) for key, score in table.items() if score < 0)
    for _, key in negatives[limit // 2:]:  # the nearest zero, past the most negative half
        del table[key]
