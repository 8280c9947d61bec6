"""What a node publishes: each record on the topic peers listen to for it, gathered over a round
and sent as a few batched envelopes (gossip rates must stay low, ARCHITECTURE §6)."""

from __future__ import annotations

import contextlib

from node.net.network import PROBLEMS_TOPIC, Network, problem_topic
from node.net.wire import WireError, encode_batch
from research_dag import (
    Experiment,
    Hypothesis,
    Pattern,
    Problem,
    Record,
    ResearchDag,
    Transcript,
    Verdict,
    Verification,
)


def topic_of(record: Record, dag: ResearchDag) -> str | None:
    """The gossip topic `record` travels on (docs/protocol.md section 3, Topics); None when
    `dag` cannot place it: a Verification or Verdict whose experiment or hypothesis it does not
    hold (as that kind), which then travels by sync only."""
    if isinstance(record, Problem | Pattern):
        return PROBLEMS_TOPIC
    if isinstance(record, Experiment | Hypothesis | Transcript):
        return problem_topic(record.problem)
    cited, kind = (
        (record.experiment, "experiment") if isinstance(record, Verification)
        else (record.hypothesis, "hypothesis") if isinstance(record, Verdict)
        else (None, None)
    )
    header = None if cited is None else dag.header(cited)  # from memory: never a store read
    if header is not None and header.kind == kind and header.problem is not None:
        return problem_topic(header.problem)
    return None


class Outbox:
    """Records waiting for the next `flush`, by topic."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self._pending: dict[str, list[Record]] = {}

    def add(self, topic: str, record: Record) -> None:
        self._pending.setdefault(topic, []).append(record)

    async def flush(self) -> int:
        """Publish everything pending: one message per topic and batch. Returns how many."""
        pending, self._pending = self._pending, {}
        published = 0
        for topic, records in sorted(pending.items()):
            for envelope in _envelopes(records):
                await self.network.publish(topic, envelope)
                published += 1
        return published


def _envelopes(records: list[Record]) -> list[bytes]:
    """Gossip envelopes for `records`; a record too large for gossip is left to sync."""
    try:
        return encode_batch(records)
    except WireError:
        envelopes: list[bytes] = []
        for record in records:
            with contextlib.suppress(WireError):
                envelopes += encode_batch([record])
        return envelopes
