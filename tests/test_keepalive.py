"""The libp2p ping peers use as keep-alive (docs/protocol.md section 1): served by every node,
one stream per ping as js-libp2p's connection monitor opens them, many in a row."""

from __future__ import annotations

import pytest
import trio

from node.net import NetworkError
from node.net.libp2p import open_libp2p_network


async def test_a_node_echoes_pings_on_a_new_stream_each_time() -> None:
    async with open_libp2p_network(bytes([71]) * 32) as a, \
            open_libp2p_network(bytes([72]) * 32, bootstrap=a.listen_addrs()) as b:
        with trio.fail_after(30):
            # More than py-libp2p's 2 open ping streams per peer: each must be closed in turn.
            rtts = [await b.ping(a.peer_id) for _ in range(5)]
            rtts += [await a.ping(b.peer_id) for _ in range(5)]
        assert all(rtt > 0 for rtt in rtts)


async def test_a_ping_to_a_peer_never_met_fails_as_a_network_error() -> None:
    async with open_libp2p_network(bytes([73]) * 32) as a:
        stranger = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
        with trio.fail_after(30), pytest.raises(NetworkError):
            await a.ping(stranger)
