"""LAN discovery for `node.net.libp2p` by mDNS, as the libp2p mDNS spec lays it out (service
`_p2p._udp.local`, one `dnsaddr=<multiaddr>` TXT string per address): announces this node and
reports the peers it hears, on chosen interfaces only. The one module of ours that imports
zeroconf (libp2p's own dependency), and only where mDNS starts.

py-libp2p 0.8.1 has an mDNS service of its own, but it opens zeroconf on every interface, hands
what it finds to one process-wide callback list (every host in a simulation would hear every
other host's discoveries), blocks its browser thread in retry sleeps, and files every address
after the first under `dnsaddr2=`, `dnsaddr3=`, ..., which go and js nodes skip (they read the
`dnsaddr=` strings)."""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import string
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from node.net.network import NetworkError

if TYPE_CHECKING:
    from zeroconf import ServiceInfo, ServiceStateChange, Zeroconf

SERVICE_TYPE = "_p2p._udp.local."
TXT_PREFIX = b"dnsaddr="
PEER_NAME_CHARS = string.ascii_lowercase + string.digits
PEER_NAME_LENGTH = 48  # the spec asks for 32 to 63 random characters
MAX_ADDRS = 8  # per announcement, ours and each peer's; more are ignored
SIGHTING_BUFFER = 64  # peers heard and not yet taken by the dialer; more are dropped
LOOKUP_TIMEOUT_MS = 1000  # asking a peer for its TXT record, in the browser's thread


@dataclass(frozen=True)
class Sighting:
    """A peer heard on the LAN: its id and the multiaddrs (each ending /p2p/<id>) it gave, in
    the order to dial them (loopback last: it reaches the peer only from its own machine)."""

    peer: str
    addrs: tuple[str, ...]


def interfaces_for(listen: str) -> list[str] | None:
    """The interfaces to run mDNS on for a listen multiaddr: the listened-on IPv4 address
    itself, or every interface (None) for a wildcard or non-IPv4 address."""
    parts = listen.split("/")
    if len(parts) > 2 and parts[1] == "ip4" and parts[2] != "0.0.0.0":
        return [parts[2]]
    return None


@asynccontextmanager
async def open_mdns(
    peer_id: str, addrs: Sequence[str], interfaces: Sequence[str] | None
) -> AsyncIterator[trio.MemoryReceiveChannel[Sighting]]:
    """Announce `addrs` (ours, each ending /p2p/`peer_id`) on `interfaces` (None: all) and
    yield the peers heard there, ourselves excluded. NetworkError if mDNS cannot start (the
    UDP port 5353 taken without address reuse, no such interface)."""
    from zeroconf import (
        Error,
        InterfaceChoice,
        IPVersion,
        ServiceBrowser,
        ServiceStateChange,
        Zeroconf,
    )

    logger = logging.getLogger("zeroconf")
    if not logger.handlers:  # as for libp2p's: keep its warnings (a stray LAN packet) off stderr
        logger.addHandler(logging.NullHandler())
    sender, receiver = trio.open_memory_channel[Sighting](SIGHTING_BUFFER)
    token = trio.lowlevel.current_trio_token()

    def heard(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        # Runs in zeroconf's browser thread: an exception here would end that thread (and with
        # it discovery), so what a LAN peer can make zeroconf or us raise is contained.
        if state_change is ServiceStateChange.Removed:
            return
        try:
            info = zeroconf.get_service_info(service_type, name, timeout=LOOKUP_TIMEOUT_MS)
        except (Error, ValueError):
            return
        sighting = None if info is None else _sighting(info.text or b"")
        if sighting is not None and sighting.peer != peer_id:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(_offer, sender, sighting)

    def start() -> tuple[Zeroconf, ServiceBrowser]:
        chosen = InterfaceChoice.All if interfaces is None else list(interfaces)
        zeroconf = Zeroconf(interfaces=chosen, ip_version=IPVersion.V4Only)
        try:
            return zeroconf, ServiceBrowser(zeroconf, SERVICE_TYPE, handlers=[heard])
        except BaseException:
            zeroconf.close()
            raise

    try:
        zeroconf, browser = await trio.to_thread.run_sync(start)
    except (OSError, Error) as error:
        where = "every interface" if interfaces is None else ", ".join(interfaces)
        raise NetworkError(f"mDNS cannot start on {where}: {error!r}") from error
    name = "".join(secrets.choice(PEER_NAME_CHARS) for _ in range(PEER_NAME_LENGTH))
    info = _announcement(name, addrs[:MAX_ADDRS])
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_register, zeroconf, info)
            yield receiver
            nursery.cancel_scope.cancel()
    finally:
        # Shielded, and bounded by zeroconf itself (each call gives up after its own timeout
        # of a few seconds): cancel the browser first, so no callback runs after `sender`
        # closes; closing zeroconf says goodbye on the LAN and joins its thread.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(browser.cancel)
            sender.close()
            await trio.to_thread.run_sync(zeroconf.close)


async def _register(zeroconf: Zeroconf, info: ServiceInfo) -> None:
    from zeroconf import Error

    # Probing for a unique name takes ~1.7 s; a failure (a name clash, which 48 random
    # characters make unheard of, or a busy zeroconf loop) leaves us unannounced but still
    # listening: we dial those we hear, and they dial us when they hear us.
    with contextlib.suppress(Error):
        await trio.to_thread.run_sync(zeroconf.register_service, info)


def _announcement(name: str, addrs: Sequence[str]) -> ServiceInfo:
    """Our service record: the spec's TXT strings, plus SRV and A records as DNS-SD wants."""
    from zeroconf import ServiceInfo

    ips, port = list[bytes](), 0
    for addr in addrs:
        parts = addr.split("/")
        if len(parts) > 4 and parts[1] == "ip4" and parts[3] == "tcp":
            ips.append(socket.inet_aton(parts[2]))
            port = port or int(parts[4])
    text = b"".join(
        bytes([len(entry)]) + entry
        for entry in (TXT_PREFIX + addr.encode() for addr in addrs)
        if len(entry) <= 255  # the most one TXT string holds
    )
    return ServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        port=port,
        properties=text,  # raw TXT: the spec repeats one key, which a dict cannot hold
        server=f"{name}.local.",
        addresses=ips,
    )


def _sighting(text: bytes) -> Sighting | None:
    """A peer from its TXT record: the `dnsaddr=` strings naming the same peer id as the
    first one, up to MAX_ADDRS; None if there is none. Only IP addresses are taken (a LAN peer
    has no business sending us to resolve names); the rest is checked when dialed."""
    peer, addrs, at = "", list[str](), 0
    while at < len(text) and len(addrs) < MAX_ADDRS:
        size = text[at]
        entry, at = text[at + 1 : at + 1 + size], at + 1 + size
        if not entry.startswith(TXT_PREFIX):
            continue
        try:
            addr = entry[len(TXT_PREFIX) :].decode("ascii")
        except UnicodeDecodeError:
            continue
        _, _, claimed = addr.rpartition("/p2p/")
        if not addr.startswith(("/ip4/", "/ip6/")) or not claimed or "/" in claimed:
            continue
        if peer in ("", claimed):
            peer = claimed
            addrs.append(addr)
    addrs.sort(key=lambda addr: addr.startswith(("/ip4/127.", "/ip6/::1/")))
    return Sighting(peer, tuple(addrs)) if peer else None


def _offer(sender: trio.MemorySendChannel[Sighting], sighting: Sighting) -> None:
    """In trio's thread: hand a sighting on, or drop it if the dialer is behind or gone."""
    with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
        sender.send_nowait(sighting)
