"""The guest's stdout and stderr: `fd_write` to fds 1 and 2, served on the guest's own thread
into bounded captures.

wasmtime-py's custom-output callbacks run on wasmtime's tokio worker threads, and the last
one (the stream's finaliser) runs there after the store is gone. When that raced interpreter
exit, CPython ended the tokio thread with pthread_exit and the process aborted ("panic in a
function that cannot unwind", issue 8 finding 9). Served here, no Python ever runs on a
thread that Python did not start, and each call's work is bounded by the capture limits.
"""

from __future__ import annotations

import struct

import wasmtime

ESUCCESS, EBADF, EFAULT, ENOMEM = 0, 8, 21, 48
IOVEC_SIZE = 8
# wasmtime's per-call copy allowance (Store hostcall_fuel, 128 MiB): a bigger request gets
# ENOMEM there, and here, so guests see the same answers as under wasmtime's own fd_write.
HOSTCALL_FUEL = 128 << 20
STDOUT, STDERR = 1, 2
U32 = 0xFFFF_FFFF


def _first_non_empty(raw: bytes) -> int | None:
    """The index of the first iovec with a non-zero length, at C speed (up to 16M iovecs)."""
    count = len(raw) // IOVEC_SIZE
    first = min(
        count - len(raw[offset::IOVEC_SIZE].lstrip(b"\0")) for offset in range(4, IOVEC_SIZE)
    ) if count else 0
    return first if first < count else None


class Capture:
    """A bounded output stream: keeps the head (stdout) or the tail (stderr)."""

    def __init__(self, limit: int, keep_tail: bool) -> None:
        self.limit = limit
        self.keep_tail = keep_tail
        self.data = bytearray()
        self.total = 0
        self.overflow = False

    def wanted(self, length: int) -> tuple[int, int]:
        """The slice (start, stop) of a `length`-byte write worth reading from the guest."""
        if self.keep_tail:
            return max(0, length - self.limit), length
        return 0, max(0, min(length, self.limit - len(self.data)))

    def write(self, chunk: bytes, length: int) -> None:
        """Record a write of `length` bytes of which `chunk` is the `wanted` part."""
        self.total += length
        self.data += chunk
        if self.keep_tail:
            del self.data[: max(0, len(self.data) - self.limit)]
        self.overflow = self.total > self.limit


class Stdio:
    """The run's two captures behind the WASI `fd_write` signature."""

    def __init__(self, stdout: Capture, stderr: Capture) -> None:
        self._captures = {STDOUT: stdout, STDERR: stderr}

    def fd_write(
        self, caller: wasmtime.Caller, fd: int, iovs: int, iovs_len: int, nwritten: int
    ) -> int:
        """Like wasmtime's: checks the iovec array, writes its first non-empty buffer."""
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return EFAULT
        fd, iovs, iovs_len, nwritten = (value & U32 for value in (fd, iovs, iovs_len, nwritten))
        try:
            if iovs_len * IOVEC_SIZE > HOSTCALL_FUEL:
                return ENOMEM
            size = memory.data_len(caller)
            # Only whole iovecs inside memory; one past the end is a fault if it is reached.
            whole = max(0, min(iovs_len, (size - iovs) // IOVEC_SIZE))
            raw = bytes(memory.read(caller, iovs, iovs + whole * IOVEC_SIZE)) if whole else b""
            index = _first_non_empty(raw)
            if index is None:
                if whole < iovs_len:
                    return EFAULT
                buf, length = 0, 0
            else:
                buf, length = struct.unpack_from("<II", raw, index * IOVEC_SIZE)
            if iovs_len * IOVEC_SIZE + length > HOSTCALL_FUEL:
                return ENOMEM
            capture = self._captures.get(fd)
            if capture is None:
                # Every other descriptor is read-only (stdin, read-only mounts): wasmtime
                # answers EBADF for each, so the same answer is given without asking it.
                return EBADF
            if buf + length > size:
                return EFAULT
            start, stop = capture.wanted(length)
            chunk = bytes(memory.read(caller, buf + start, buf + stop)) if stop > start else b""
            capture.write(chunk, length)
            memory.write(caller, struct.pack("<I", length), nwritten)
        except (IndexError, ValueError, OverflowError, struct.error):
            return EFAULT
        return ESUCCESS
