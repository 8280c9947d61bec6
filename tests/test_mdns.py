"""mDNS LAN discovery on loopback only: two real libp2p hosts find and connect to each other
with no bootstrap address, and stop cleanly; the TXT record round-trips the spec's format."""

from __future__ import annotations

import os
import secrets
import threading

import trio
from hypothesis import given
from hypothesis import strategies as st

from node.net.libp2p import Libp2pNetwork, open_libp2p_network
from node.net.mdns import MAX_ADDRS, _announcement, _sighting, interfaces_for

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
FIND_S = 20.0  # registration probes for ~1.7 s; then one announcement reaches the other


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.name.startswith("Trio thread")}


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _wait_for(network: Libp2pNetwork, peer: str) -> None:
    async for connected in network.peer_events():
        if connected == peer:
            return


async def test_two_hosts_on_loopback_find_and_connect_by_mdns_alone() -> None:
    threads, fds = _threads(), _open_fds()
    with trio.fail_after(FIND_S + 15):  # and the close, bounded by zeroconf's own timeouts
        # Fresh keys: a concurrent run of this test on the machine is heard too, and must not
        # pass for the host we are waiting for.
        async with open_libp2p_network(secrets.token_bytes(32), listen=LOOPBACK, mdns=True) as a, \
                open_libp2p_network(secrets.token_bytes(32), listen=LOOPBACK, mdns=True) as b:
            with trio.fail_after(FIND_S):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_wait_for, a, b.peer_id)
                    nursery.start_soon(_wait_for, b, a.peer_id)
            assert b.peer_id in a.connected_peers() and a.peer_id in b.connected_peers()
            started = [t.name for t in _threads() - threads]
            assert sum(name.startswith("zeroconf") for name in started) == 2  # browsers
            assert sum("_run_loop" in name for name in started) == 2  # zeroconf's event loops
    assert _threads() == threads  # all joined (trio keeps its idle worker threads a while)
    assert _open_fds() == fds  # zeroconf's sockets and loop closed too


def test_mdns_runs_on_the_listened_interface_only() -> None:
    assert interfaces_for("/ip4/127.0.0.1/tcp/0") == ["127.0.0.1"]
    assert interfaces_for("/ip4/0.0.0.0/tcp/4001") is None  # wildcard: every interface
    assert interfaces_for("/ip6/::1/tcp/4001") is None


def test_txt_record_holds_one_dnsaddr_string_per_address_and_reads_back() -> None:
    peer = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
    ours = [f"/ip4/127.0.0.1/tcp/4001/p2p/{peer}", f"/ip4/192.0.2.7/tcp/4001/p2p/{peer}"]
    info = _announcement("x" * 48, ours)
    text = info.text or b""
    assert text.startswith(bytes([len(ours[0]) + 8]) + b"dnsaddr=" + ours[0].encode())
    assert info.port == 4001 and len(info.addresses) == 2
    sighting = _sighting(text)
    assert sighting is not None and sighting.peer == peer
    assert sighting.addrs == (ours[1], ours[0])  # loopback last
    other = "/ip4/10.0.0.1/tcp/1/p2p/12D3KooWOther"
    mixed = _sighting(text + bytes([len(other) + 8]) + b"dnsaddr=" + other.encode() + b"\x03a=b")
    assert mixed is not None and mixed.addrs == sighting.addrs  # another id's address dropped
    assert _sighting(b"\x05hello") is None and _sighting(b"") is None
    named = f"dnsaddr=/dns4/example.com/tcp/1/p2p/{peer}".encode()
    assert _sighting(bytes([len(named)]) + named) is None  # IP addresses only
    assert _sighting(b"\xff" + b"dnsaddr=/p2p/" + b"\xfe" * 10) is None  # truncated, not ASCII


_ADDR_PARTS = st.tuples(st.sampled_from([b"", b"/ip4/1.2.3.4/tcp/1/p2p/", b"/ip6/::1/p2p/"]),
                        st.binary(max_size=60)).map(lambda halves: halves[0] + halves[1])


@given(st.binary(max_size=1024) | st.lists(_ADDR_PARTS, max_size=20).map(
    lambda parts: b"".join(bytes([len(p) + 8]) + b"dnsaddr=" + p for p in parts)))
def test_no_txt_record_a_lan_peer_sends_can_make_the_reader_raise(text: bytes) -> None:
    # It runs in zeroconf's browser thread: an exception there would end discovery.
    sighting = _sighting(text)
    assert sighting is None or 0 < len(sighting.addrs) <= MAX_ADDRS
