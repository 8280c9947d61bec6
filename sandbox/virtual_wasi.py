"""The WASI calls that would make runs differ (clock, random, sleeping), answered
deterministically: a guest's run depends only on its inputs and its seed."""

from __future__ import annotations

import random
import struct
from typing import Any

import wasmtime

from sandbox.deadline import RunClock

# WASI preview1 errno values.
ESUCCESS, EACCES, EFAULT, EINVAL, EIO = 0, 2, 21, 28, 29
NANOS = 1_000_000_000
# Virtual time: a fixed start (2024-01-01T00:00:00Z) that advances a microsecond per read, so
# code that times itself gets repeatable values and `time.sleep` ends at once.
REALTIME_ORIGIN_NS = 1_704_067_200 * NANOS
CLOCK_STEP_NS = 1_000
SUBSCRIPTION_SIZE, EVENT_SIZE = 48, 32
MAX_SUBSCRIPTIONS = 4096
U32 = 0xFFFF_FFFF
# random_get fills big buffers a chunk at a time, checking the deadline in between, so a
# 1 GiB request costs no more host memory than a chunk and cannot outlive the budget.
# A multiple of 4: Random.randbytes(a) + randbytes(b) == randbytes(a + b) for such an `a`,
# so chunking leaves every guest's random bytes as they were.
RANDOM_CHUNK = 1 << 20


class VirtualWasi:
    """Deterministic replacements for the WASI calls that read the world."""

    def __init__(self, seed: int, clock: RunClock, clock_start_ns: int = 0) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        self.now_ns = clock_start_ns

    def _memory(self, caller: wasmtime.Caller) -> Any:
        return caller.get("memory")

    def random_get(self, caller: wasmtime.Caller, buf: int, length: int) -> int:
        buf, length = buf & U32, length & U32
        memory = self._memory(caller)
        try:
            if buf + length > memory.data_len(caller):
                return EFAULT
            for offset in range(0, length, RANDOM_CHUNK):
                if self.clock.expired():
                    return EIO  # the run is over: the next epoch check traps it
                size = min(RANDOM_CHUNK, length - offset)
                memory.write(caller, self.rng.randbytes(size), buf + offset)
        except (IndexError, ValueError, OverflowError):
            return EFAULT
        return ESUCCESS

    def _tick(self) -> int:
        self.now_ns += CLOCK_STEP_NS
        return self.now_ns

    def clock_time_get(self, caller: wasmtime.Caller, clock: int, _precision: int, out: int) -> int:
        now = self._tick() + (REALTIME_ORIGIN_NS if clock == 0 else 0)
        try:
            self._memory(caller).write(caller, struct.pack("<Q", now), out)
        except (IndexError, ValueError, OverflowError):
            return EFAULT
        return ESUCCESS

    def clock_res_get(self, caller: wasmtime.Caller, _clock: int, out: int) -> int:
        try:
            self._memory(caller).write(caller, struct.pack("<Q", CLOCK_STEP_NS), out)
        except (IndexError, ValueError, OverflowError):
            return EFAULT
        return ESUCCESS

    def poll_oneoff(
        self, caller: wasmtime.Caller, subs: int, events: int, count: int, nevents: int
    ) -> int:
        """Every subscription is ready at once; clock waits advance virtual time instead."""
        if count <= 0 or count > MAX_SUBSCRIPTIONS:
            return EINVAL
        memory = self._memory(caller)
        try:
            raw = memory.read(caller, subs, subs + count * SUBSCRIPTION_SIZE)
            if len(raw) != count * SUBSCRIPTION_SIZE:
                return EFAULT
            out = bytearray()
            for index in range(count):
                base = index * SUBSCRIPTION_SIZE
                userdata, tag = struct.unpack_from("<QB", raw, base)
                if tag == 0:  # clock
                    timeout, flags = struct.unpack_from("<Q8xH", raw, base + 24)
                    absolute = flags & 1
                    wake = timeout if absolute else self.now_ns + timeout
                    self.now_ns = max(self.now_ns, min(wake, self.now_ns + 3600 * NANOS))
                out += struct.pack("<QHBxxxxxQH6x", userdata, ESUCCESS, tag, 0, 0)
            memory.write(caller, bytes(out), events)
            memory.write(caller, struct.pack("<I", count), nevents)
        except (IndexError, ValueError, OverflowError, struct.error):
            return EFAULT
        return ESUCCESS


__all__ = ["EACCES", "EFAULT", "EINVAL", "EIO", "ESUCCESS", "RANDOM_CHUNK", "U32", "VirtualWasi"]
