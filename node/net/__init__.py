"""The network role a node is written against, its two implementations (libp2p and in-memory), and
the bytes, batching and anti-entropy sync that run over either."""

from typing import TYPE_CHECKING, Any

from node.net.bounded_table import bound_negatives
from node.net.decoded import SHARED_BYTES, SHARED_MESSAGES, DecodedMessages
from node.net.memory import MemoryHub, MemoryNetwork
from node.net.network import (
    PROBLEMS_TOPIC,
    SYNC_PROTOCOL,
    GossipMessage,
    Network,
    NetworkError,
    problem_topic,
)
from node.net.outbox import Outbox, topic_of
from node.net.sync import SyncService
from node.net.wire import DropCounter

if TYPE_CHECKING:
    from node.net.libp2p import Libp2pNetwork, open_libp2p_network

__all__ = [
    "PROBLEMS_TOPIC",
    "SHARED_BYTES",
    "SHARED_MESSAGES",
    "SYNC_PROTOCOL",
    "DecodedMessages",
    "DropCounter",
    "GossipMessage",
    "Libp2pNetwork",
    "MemoryHub",
    "MemoryNetwork",
    "Network",
    "NetworkError",
    "Outbox",
    "SyncService",
    "bound_negatives",
    "open_libp2p_network",
    "problem_topic",
    "topic_of",
]


def __getattr__(name: str) -> Any:
    # py-libp2p takes ~0.8 s to import: only a command that opens a real network pays for it
    # (`swarm --help`, the in-memory simulator and most tests never do).
    if name in ("Libp2pNetwork", "open_libp2p_network"):
        from node.net import libp2p

        return getattr(libp2p, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
