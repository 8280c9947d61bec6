"""What py-libp2p 0.8.1 would let a stranger fill, bounded in our adapter (an audit, 2026-12-08;
docs/security.md, "py-libp2p's own tables"): the peerstore (our own entry never evicted, a
peer's identify kept to a few protocols and addresses) and the inbound connection slots (each
handler ends with its connection). The gossip router's part is in node/net/libp2p_host.py's
`_GossipSub`."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import multiaddr  # type: ignore[import-untyped]  # libp2p's own dependency; ships no types
from libp2p.io.abc import ReadWriteCloser
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.network.connection.swarm_connection import SwarmConn
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerstore import PeerStore

MAX_PEER_ADDRS, MAX_PEER_PROTOCOLS, MAX_PROTOCOL_CHARS = 16, 64, 256  # kept per peer


class OwnPeerStore(PeerStore):
    """A peerstore that never evicts our own entry. py-libp2p keeps at most 1,000 peers and
    evicts those without addresses first: ours (our key pair, no addresses) went first, after
    which every publish and identify answer raised PeerStoreError. A stranger's 75 PRUNEs
    offering peer exchange of free keys did it in 1.8 s (peer exchange is off now too); so
    would enough fresh identities connecting."""

    def __init__(self, own: ID) -> None:
        super().__init__()
        self._own = own

    # What a peer's identify may leave in its entry: py-libp2p kept every protocol string it
    # named and up to 1,000 addresses (a 1 MiB identify held 8.7 MB, an audit measured).
    def add_addrs(self, peer_id: ID, addrs: Sequence[multiaddr.Multiaddr], ttl: int = 0
                  ) -> None:
        held = self.peer_data_map.get(peer_id)
        room = MAX_PEER_ADDRS - (len(held.get_addrs()) if held is not None else 0)
        super().add_addrs(peer_id, list(addrs)[: max(room, 0)], ttl)

    def add_protocols(self, peer_id: ID, protocols: Sequence[str]) -> None:
        held = self.peer_data_map.get(peer_id)
        room = MAX_PEER_PROTOCOLS - (len(held.get_protocols()) if held is not None else 0)
        kept = [p for p in protocols if len(p) <= MAX_PROTOCOL_CHARS]
        super().add_protocols(peer_id, kept[: max(room, 0)])

    def _enforce_peer_limit(self) -> None:
        own = self.peer_data_map.pop(self._own, None)
        try:
            super()._enforce_peer_limit()
        finally:
            if own is not None:
                self.peer_data_map[self._own] = own


def release_inbound_handlers(swarm: Swarm) -> None:
    """Each inbound connection's handler now ends when that connection closes. py-libp2p
    0.8.1 kept it (and its one of 250 inbound slots) until the whole swarm stopped: after
    ~250 connections accepted over the node's life, by one stranger reconnecting in a loop
    (~80 s) or by weeks of honest reconnects, it accepted no one (a red team, 2026-12-08). The
    handler may not return while the connection is open: trio closes the socket then."""

    async def handle(read_write_closer: ReadWriteCloser, maddr: multiaddr.Multiaddr,
                     failure_event: object) -> None:
        remote = swarm._build_remote_multiaddr(read_write_closer)
        if remote is not None and not await swarm.connection_gate.is_allowed(remote):
            with contextlib.suppress(Exception):
                await read_write_closer.close()
            return
        raw = RawConnection(read_write_closer, False)
        try:
            muxed = await swarm.upgrade_inbound_raw_conn(raw, maddr)
        except Exception:  # as py-libp2p's: a failed upgrade closes the socket  # noqa: BLE001
            with contextlib.suppress(Exception):
                await raw.close()
            return
        for conn in [c for conns in swarm.connections.values() for c in conns]:
            if conn.muxed_conn is muxed and isinstance(conn, SwarmConn):
                await conn.event_closed.wait()  # this connection's end, not the swarm's
                return
        with contextlib.suppress(Exception):  # not registered (refused when added)
            await raw.close()

    swarm._do_handle_inbound_connection = handle  # type: ignore[method-assign]
