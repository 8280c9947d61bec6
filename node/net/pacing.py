"""Paces a node's own publishes per topic under a messages-per-second cap, for `node.net.libp2p`:
the caller waits its turn instead of the router silently dropping what goes over."""

from __future__ import annotations

from collections import deque

import trio

WINDOW_S = 1.0
MARGIN_S = 0.1  # the router stamps a publish (by wall clock) a moment after we do


class PublishPacer:
    def __init__(self, per_second: float) -> None:
        self._per_second = per_second
        self._recent: dict[str, deque[float]] = {}

    async def wait_turn(self, topic: str) -> None:
        """Returns once a publish on `topic` keeps it under the cap, counting that publish."""
        window = self._recent.setdefault(topic, deque())
        while True:
            now = trio.current_time()
            while window and window[0] <= now - WINDOW_S - MARGIN_S:
                window.popleft()
            if len(window) < self._per_second:
                window.append(now)
                await trio.lowlevel.checkpoint()
                return
            await trio.sleep_until(window[0] + WINDOW_S + MARGIN_S)
