"""The network role a node needs: gossip topics, request/response streams and peer scoring.

Two implementations meet it: `node.net.libp2p` (real libp2p: TCP + Noise + yamux + GossipSub)
and `node.net.memory` (an in-memory network with latency, loss and partitions, for large
simulations and fast tests). Everything above this module is written against `Network` only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import trio

# Protocol ids and topics are part of the wire protocol (docs/protocol.md).
PROBLEMS_TOPIC = "/swarm/1/problems"
SYNC_PROTOCOL = "/swarm/sync/1.0.0"
MAX_MESSAGE_BYTES = 512 * 1024  # well under libp2p's 1 MiB, as js-libp2p needs
MAX_REQUEST_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


def problem_topic(problem_id: str) -> str:
    return f"/swarm/1/problem/{problem_id}"


@dataclass(frozen=True)
class GossipMessage:
    topic: str
    source: str  # peer id of the original publisher (signed by it at the gossip layer)
    data: bytes


# (source peer id, data) -> accept? Must be cheap (size, schema, signature): never replay here.
Validator = Callable[[str, bytes], bool]
# (requesting peer id, request bytes) -> response bytes
RequestHandler = Callable[[str, bytes], Awaitable[bytes]]
# The network group a request came from while its handler runs (`network_group`), or None: a
# peer id costs nothing, an address block does, so a node budgets what it serves by this.
REQUEST_ORIGIN: ContextVar[str | None] = ContextVar("request_origin", default=None)


def network_group(host: str) -> str | None:
    """The block of addresses one operator is likely to hold, for a public address: its /24
    (IPv4) or /48 (IPv6, a site's usual allocation; a /64 is anyone's for free). None for a
    loopback, private, link-local or otherwise non-global address (peers on one machine or
    LAN are told apart by id) and for what is not an address."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class NetworkError(Exception):
    """A peer could not be reached or a request failed; the message names the peer."""


class Network(Protocol):
    @property
    def peer_id(self) -> str: ...

    def listen_addrs(self) -> list[str]:
        """Multiaddrs others can bootstrap from, each ending in /p2p/<peer id>."""
        ...

    def connected_peers(self) -> list[str]: ...

    async def connect(self, addr: str) -> str:
        """Dial a multiaddr (with /p2p/<id>); returns the peer id. Raises NetworkError."""
        ...

    async def subscribe(
        self, topic: str, validator: Validator | None = None
    ) -> trio.MemoryReceiveChannel[GossipMessage]:
        """Messages on `topic` that passed `validator` (own publishes are not delivered)."""
        ...

    async def publish(self, topic: str, data: bytes) -> None: ...

    def handle_requests(self, protocol: str, handler: RequestHandler) -> None: ...

    async def request(self, peer: str, protocol: str, data: bytes) -> bytes:
        """One request/response exchange on a fresh stream. Raises NetworkError."""
        ...

    def adjust_score(self, peer: str, delta: float) -> None:
        """Feed the application-specific peer score (negative for a lying peer)."""
        ...

    def decay_scores(self, factor: float) -> None:
        """Move every negative application score toward 0 (multiply it by `factor` < 1): the
        way back for a peer penalised once (docs/protocol.md section 9)."""
        ...

    async def block(self, peers: Iterable[str]) -> None:
        """Cut `peers` off (a partition): close the connections to them, refuse new ones both
        ways and drop their gossip until `unblock`; requests to them raise NetworkError."""
        ...

    def unblock(self, peers: Iterable[str]) -> None:
        """Undo `block`; closed connections stay closed until someone dials again."""
        ...

    def peer_events(self) -> trio.MemoryReceiveChannel[str]:
        """Peer ids as they connect (sync runs on connect)."""
        ...
