"""What a stranger could make py-libp2p's own tables hold, on real hosts on 127.0.0.1 (an audit,
2026-12-08; node/net/libp2p_host.py): every inbound connection kept one of 250 inbound slots
until the node stopped (then it accepted no one), a PRUNE's peer exchange filled the peerstore
and evicted our own key (then every publish failed), and PRUNEs naming any topic left back-off
entries for good. Each test fails on the code before its fix."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerstore import create_signed_peer_record
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
from libp2p.pubsub.pb import rpc_pb2
from libp2p.utils.varint import encode_varint_prefixed
from multiaddr import Multiaddr

from node.net.libp2p import Libp2pNetwork, open_libp2p_network
from node.net.libp2p_bounds import OwnPeerStore
from node.net.libp2p_host import MAX_BACK_OFF_S, _GossipSub

TOPIC = "strangers"


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    """Wait for `condition`, checking it between the hosts' steps, within `timeout`."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


async def test_an_inbound_connection_gives_its_slot_back_when_it_closes() -> None:
    """Strangers connecting and going in a loop held a slot each time: after ~250 the node
    refused every inbound connection, honest ones too (weeks of honest reconnects as well)."""
    async with open_libp2p_network(os.urandom(32)) as target:
        addr = target.listen_addrs()[0]
        swarm = target._host.get_network()
        limiter = swarm._inbound_limiter
        for _ in range(12):
            async with open_libp2p_network(os.urandom(32)) as stranger:
                me = ID.from_base58(stranger.peer_id)
                await stranger.connect(addr)
                await until(lambda me=me: bool(swarm.get_connections(me)))
            # Its host closed (nothing of it dials again): its connection, and its slot, go.
            await until(lambda me=me: not swarm.get_connections(me))
            await until(lambda: limiter.borrowed_tokens == 0)
        async with open_libp2p_network(os.urandom(32), bootstrap=[addr]) as honest:
            assert target.peer_id in honest.connected_peers()


def _px_prune(peers: int) -> rpc_pb2.ControlPrune:
    """A PRUNE of our topic offering `peers` signed records of fresh keys (peer exchange)."""
    prune = rpc_pb2.ControlPrune(topicID=TOPIC, backoff=60)
    for _ in range(peers):
        pair = create_new_key_pair()
        peer = ID.from_pubkey(pair.public_key)
        record = create_signed_peer_record(peer, [Multiaddr("/ip4/127.0.0.1/udp/9")],
                                           pair.private_key)
        prune.peers.append(rpc_pb2.PeerInfo(peerID=peer.to_bytes(),
                                            signedPeerRecord=record.marshal_envelope()))
    return prune


async def _send(stream: object, target: Libp2pNetwork, rpc: rpc_pb2.RPC, marker: str) -> None:
    """Write `rpc`, then a subscription to `marker`: RPCs on one stream are handled in order,
    so once the marker shows, `rpc` has been handled."""
    for message in (rpc, rpc_pb2.RPC(subscriptions=[
            rpc_pb2.RPC.SubOpts(subscribe=True, topicid=marker)])):
        await stream.write(  # type: ignore[attr-defined]
            encode_varint_prefixed(message.SerializeToString()))
    await until(lambda: marker in target._pubsub.peer_topics)


async def test_prunes_offering_peers_or_naming_any_topic_leave_nothing_behind() -> None:
    async with open_libp2p_network(os.urandom(32)) as target:
        await target.subscribe(TOPIC)
        store = target._host.get_peerstore()
        async with open_libp2p_network(os.urandom(32),
                                       bootstrap=target.listen_addrs()) as stranger:
            me = ID.from_base58(stranger.peer_id)
            await until(lambda: me in target._pubsub.peers)
            stream = await stranger._host.new_stream(ID.from_base58(target.peer_id),
                                                     [TProtocol(PROTOCOL_ID_V11)])
            # Peer exchange: 20 x 16 fresh keys offered (75 such PRUNEs evicted our key).
            rpc = rpc_pb2.RPC(control=rpc_pb2.ControlMessage(
                prune=[_px_prune(16) for _ in range(20)]))
            await _send(stream, target, rpc, "marker-px")
            assert len(store.peer_data_map) <= 3
            # Topics we are not in, with back-offs of 2^40 s.
            junk = rpc_pb2.RPC(control=rpc_pb2.ControlMessage(prune=[
                rpc_pb2.ControlPrune(topicID=f"junk-{n}", backoff=2**40) for n in range(500)]
                + [rpc_pb2.ControlPrune(topicID=TOPIC, backoff=2**40)]))
            await _send(stream, target, junk, "marker-junk")
            router = target._router
            assert not [t for t in router.back_off if t.startswith("junk-")]
            latest = time.time() + MAX_BACK_OFF_S + 5  # a back-off is a wall-clock time
            assert all(until_s <= latest
                       for peers in router.back_off.values() for until_s in peers.values())
        with trio.fail_after(10):
            await target.publish(TOPIC, b"still publishing")


def test_our_own_entry_survives_a_full_peerstore() -> None:
    """py-libp2p evicts entries without addresses first once past 1,000 peers: ours (our key
    pair, no addresses) went first, and every publish then raised PeerStoreError."""
    pair = create_new_key_pair()
    own = ID.from_pubkey(pair.public_key)
    store = OwnPeerStore(own)
    store.add_key_pair(own, pair)
    for _ in range(store.max_peers + 50):
        other = ID.from_pubkey(create_new_key_pair().public_key)
        store.add_addrs(other, [Multiaddr("/ip4/127.0.0.1/tcp/9")], 3600)
    assert own in store.peer_data_map and store.pubkey(own) == pair.public_key
    assert len(store.peer_data_map) <= store.max_peers + 1


def test_a_peers_identify_leaves_a_bounded_entry() -> None:
    """py-libp2p kept every protocol string a peer's identify named and up to 1,000 of its
    addresses (a 1 MiB identify held 8.7 MB); now 64 protocols of 256 characters at most and
    16 addresses per peer."""
    pair = create_new_key_pair()
    store = OwnPeerStore(ID.from_pubkey(pair.public_key))
    peer = ID.from_pubkey(create_new_key_pair().public_key)
    store.add_addrs(peer, [Multiaddr(f"/ip4/10.0.{n // 256}.{n % 256}/tcp/9")
                           for n in range(1_000)], 3600)
    store.add_protocols(peer, [f"/junk/{n}" for n in range(10_000)] + ["/x/" + "y" * 5_000])
    store.add_protocols(peer, ["/meshsub/1.1.0"])
    assert len(store.addrs(peer)) <= 16
    protocols = store.get_protocols(peer)
    assert len(protocols) <= 64 and max(map(len, protocols)) <= 256


def test_equivocation_is_caught_from_a_digest_not_the_whole_message() -> None:
    """py-libp2p kept the first copy of each (sender, sequence number) whole, up to ~1,000
    messages of up to 512 KiB between trims; now a digest, and the same check."""
    router = _GossipSub(protocols=[TProtocol(PROTOCOL_ID_V11)], degree=6, degree_low=4,
                        degree_high=12)
    sender = ID.from_pubkey(create_new_key_pair().public_key).to_bytes()
    big = rpc_pb2.Message(from_id=sender, seqno=b"\x01", data=b"x" * (512 << 10),
                          topicIDs=[TOPIC])
    assert router._check_equivocation(big) and router._check_equivocation(big)
    assert not router.equivocation_detection  # where py-libp2p kept the whole message
    assert all(len(repr(v)) < 200 for v in (router._first_seen or {}).values())
    other = rpc_pb2.Message(from_id=sender, seqno=b"\x01", data=b"y", topicIDs=[TOPIC])
    assert not router._check_equivocation(other)
    for n in range(3_000):  # bounded whatever the senders send
        router._check_equivocation(rpc_pb2.Message(from_id=sender, seqno=n.to_bytes(4, "big"),
                                                   data=b"z", topicIDs=[TOPIC]))
    assert len(router._first_seen or {}) <= 1_000
