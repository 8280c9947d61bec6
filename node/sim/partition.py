"""The partition fault of `swarm simulate`: the swarm split into two halves that block each other
(through `Network.block`, so on either network), healed by unblocking and redialing the links
the split closed."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from node.net import Network, NetworkError


class Partition:
    """Nodes are named by their index in the simulation's plan; `peer_ids[i]` is node i's."""

    def __init__(self, peer_ids: Sequence[str]) -> None:
        self._ids = list(peer_ids)
        self.active = False
        self._cut: set[tuple[int, int]] = set()  # links the split closed: (lower, higher index)

    def other_half(self, index: int) -> set[str]:
        """The peer ids node `index` is cut off from while the partition is active."""
        half = len(self._ids) // 2
        return set(self._ids[half:] if index < half else self._ids[:half])

    async def split(self, up: Mapping[int, Network]) -> None:
        """Every up node blocks the other half; a node that comes up later calls
        `other_half` itself while `active`."""
        self.active = True
        index_of = {peer: index for index, peer in enumerate(self._ids)}
        for index, network in sorted(up.items()):
            across = self.other_half(index)
            for peer in set(network.connected_peers()) & across:
                low, high = sorted((index, index_of[peer]))
                self._cut.add((low, high))
            await network.block(across)

    async def heal(self, up: Mapping[int, Network]) -> None:
        """Unblock, and redial the closed links whose ends are both up; sync on connect (and
        the periodic passes) then bring each side the records it missed."""
        self.active = False
        for index, network in sorted(up.items()):
            network.unblock(self.other_half(index))
        for low, high in sorted(self._cut):
            if low in up and high in up:
                with contextlib.suppress(NetworkError):  # a failed dial is a fault, not a bug
                    await up[low].connect(up[high].listen_addrs()[0])
        self._cut.clear()
