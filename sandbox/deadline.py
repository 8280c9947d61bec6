"""Wall-clock deadlines of guest runs, and the stop that returns every guest before exit.

The engine's epoch is a clock: epoch n stands for `origin + n * EPOCH_TICK_S` on
`time.monotonic()`. A ticker thread advances it to match real time, catching up every tick it
missed, and each run's store traps once the epoch reaches the tick after its deadline; the
comparison happens inside wasmtime, holding no lock. Counting ticks instead (the old design)
overran a 30 s budget by 6-16 s on a loaded host: a sleeping thread's ticks arrive late and
lateness adds up. Here lateness delays the trap once, by one late tick, so a run ends within
DEADLINE_SLACK_S of its budget however late the ticks are.

The time a run's host spends waiting on a model (sandbox/model_door.py) is not the guest's:
the guest cannot run meanwhile, and a provider's latency differs from node to node, so it
would make the same candidate time out on one node and not on another. While the host answers
a model call the run's deadline stands still (it moves out by the time the call took) and a
bound of its own runs instead: MODEL_WAIT_S of model answers per run, in total. A Ctrl-C
still stops the run within the same bound: the call in flight gives up (its provider polls
`expired`) and the guest traps as soon as it runs again.

At interpreter exit no guest may still be inside wasmtime: a daemon thread that calls back into
Python during finalisation is ended by CPython with pthread_exit, whose forced unwind through
wasmtime's `extern "C"` frames aborts the process (issue 8, findings 9 and 13).
"""

from __future__ import annotations

import atexit
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

import wasmtime

EPOCH_TICK_S = 0.02
# The bound this module promises: a run returns within its budget plus this, on any load.
DEADLINE_SLACK_S = 1.0
STOP_WAIT_S = 10.0  # host calls are capped, so a stopped guest returns in milliseconds
# The most time one run may spend waiting on model answers, all its calls together (besides
# its wall_s): 40 calls of a slow provider at 15 s each.
MODEL_WAIT_S = 600.0


class RunClock:
    """One run's wall-clock deadline; `reason` says why the run was stopped, if it was."""

    def __init__(
        self, wall_s: float, model_wait_s: float = MODEL_WAIT_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._now = now  # injectable, so a test can make every tick late on purpose
        self.deadline = now() + wall_s
        self.deadline_epoch = 0
        self.reason: str | None = None
        self.model_wait_left = model_wait_s
        self.waiting_until: float | None = None  # while a model call is answered: its bound
        # Moves the guest's epoch deadline out by the seconds a model call took (EpochTicker).
        self._resume: Callable[[float], None] | None = None

    def expired(self) -> bool:
        """True once the run must stop (host calls ask between chunks of their work)."""
        if self.reason is None:
            bound = self.deadline if self.waiting_until is None else self.waiting_until
            if self._now() >= bound:
                self.reason = "timeout"
        return self.reason is not None

    @contextlib.contextmanager
    def model_wait(self) -> Iterator[None]:
        """While the host waits on a model for the guest: the deadline stands still and
        `expired` turns true once the run's model time (`model_wait_left`) is spent, or on a
        Ctrl-C. A run already past its deadline waits for nothing: it is expired at once."""
        if self.expired():
            yield
            return
        started = self._now()
        self.waiting_until = started + self.model_wait_left
        try:
            yield
        finally:
            waited = self._now() - started
            self.waiting_until = None
            self.model_wait_left = max(0.0, self.model_wait_left - waited)
            if self._resume is not None:
                self._resume(waited)

    def interrupt(self) -> None:
        if self.reason is None:
            self.reason = "interrupted"


class EpochTicker:
    """Keeps the engine's epoch in step with real time while guests run, and knows every
    running guest's clock."""

    def __init__(self, engine: wasmtime.Engine, now: Callable[[], float] = time.monotonic
                 ) -> None:
        self._engine = engine
        self._now = now  # the clock the epoch follows (a test's, to make ticks late at will)
        self._condition = threading.Condition()
        self._clocks: set[RunClock] = set()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._epoch = 0  # the engine's epoch: only this object increments it
        self._origin = now()
        atexit.register(self.close)

    def _advance(self, ticks: int) -> None:
        for _ in range(ticks):
            self._engine.increment_epoch()
        self._epoch += ticks

    def _catch_up(self) -> None:
        """Advance the epoch to the current time (under the lock)."""
        due = math.floor((self._now() - self._origin) / EPOCH_TICK_S)
        if due > self._epoch:
            self._advance(due - self._epoch)

    def tick(self) -> None:
        """One tick, however late it comes: the epoch catches up with the clock (the ticker
        thread does this every EPOCH_TICK_S; a test calls it at the times it chooses)."""
        with self._condition:
            self._catch_up()

    @contextlib.contextmanager
    def running(
        self, store: wasmtime.Store, wall_s: float, model_wait_s: float = MODEL_WAIT_S
    ) -> Iterator[RunClock]:
        """Keep `store`'s guest to `wall_s` seconds from now, not counting up to
        `model_wait_s` spent waiting on model answers; the clock says if it was stopped.

        Everything that may call back into Python from wasmtime must happen inside."""
        with self._condition:
            if not self._clocks:
                # The epoch stood still while no guest ran: re-anchor it to now, not catch up.
                self._origin = self._now() - self._epoch * EPOCH_TICK_S
            self._catch_up()
            clock = RunClock(wall_s, model_wait_s, self._now)
            clock._resume = lambda waited: self._resume(clock, store, waited)
            # The first epoch whose time is at or past the deadline: never early, and late by
            # at most one tick plus however late the ticker is woken.
            clock.deadline_epoch = math.ceil((clock.deadline - self._origin) / EPOCH_TICK_S)
            store.set_epoch_deadline(max(1, clock.deadline_epoch - self._epoch))
            if self._closed:
                clock.interrupt()  # the process is exiting: no guest may start
                store.set_epoch_deadline(0)
            self._clocks.add(clock)
            self._condition.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._tick, name="swarm-epoch", daemon=True)
                self._thread.start()
        try:
            yield clock
        finally:
            with self._condition:
                self._clocks.discard(clock)
                self._condition.notify_all()

    def _resume(self, clock: RunClock, store: wasmtime.Store, waited: float) -> None:
        """After a model call of `waited` seconds (on the guest's thread, inside the host call):
        the deadline moves out by as much, or, when the run was stopped meanwhile, the guest
        traps as soon as it runs again."""
        with self._condition:
            self._catch_up()
            if clock.reason is not None:
                store.set_epoch_deadline(0)
                return
            clock.deadline += waited
            clock.deadline_epoch = math.ceil((clock.deadline - self._origin) / EPOCH_TICK_S)
            store.set_epoch_deadline(max(1, clock.deadline_epoch - self._epoch))

    def _tick(self) -> None:
        # The thread ends when no guest runs: it never touches the engine during finalisation.
        with self._condition:
            while self._clocks:
                self._catch_up()
                next_tick = self._origin + (self._epoch + 1) * EPOCH_TICK_S
                self._condition.wait(timeout=max(0.0, next_tick - self._now()))
            self._thread = None
            self._condition.notify_all()

    def wait_running(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` guests run; False if that took longer than `timeout`."""
        with self._condition:
            return self._condition.wait_for(lambda: len(self._clocks) >= count, timeout=timeout)

    def interrupt_all(self) -> None:
        """Stop every running guest and wait (bounded) until each has left wasmtime."""
        with self._condition:
            if self._clocks:
                for clock in self._clocks:
                    clock.interrupt()
                furthest = max(clock.deadline_epoch for clock in self._clocks)
                pushed = max(1, furthest - self._epoch)
                self._advance(pushed)
                self._origin -= pushed * EPOCH_TICK_S  # real time did not move: keep in step
            self._condition.wait_for(lambda: not self._clocks, timeout=STOP_WAIT_S)

    def close(self) -> None:
        """No guest starts after this; running ones are stopped and waited for (at exit)."""
        with self._condition:
            self._closed = True
        self.interrupt_all()
        with self._condition:
            self._condition.wait_for(lambda: self._thread is None, timeout=STOP_WAIT_S)
