"""The guest's stdout and stderr are served on the guest's thread into bounded captures
(issue 8 finding 9): what they keep is exactly the head or tail of everything written."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sandbox import Limits, Runtime, run_guest
from sandbox.stdio import Capture


def _written(capture: Capture, writes: list[bytes]) -> None:
    for data in writes:
        start, stop = capture.wanted(len(data))
        capture.write(data[start:stop], len(data))


@given(
    writes=st.lists(st.binary(max_size=40), max_size=12),
    limit=st.integers(0, 64),
    keep_tail=st.booleans(),
)
def test_a_capture_keeps_exactly_the_head_or_the_tail(
    writes: list[bytes], limit: int, keep_tail: bool
) -> None:
    capture = Capture(limit, keep_tail)
    _written(capture, writes)
    everything = b"".join(writes)
    expected = everything[max(0, len(everything) - limit) :] if keep_tail else everything[:limit]
    assert bytes(capture.data) == expected
    assert capture.overflow == (len(everything) > limit)


def test_floods_keep_the_head_of_stdout_and_the_tail_of_stderr(runtime: Runtime) -> None:
    code = (
        "import os\n"
        "os.write(1, b'head' + b'.' * (3 << 20))\n"
        "os.write(2, b'-' * (3 << 20) + b'tail')\n"
        "print('after', flush=True)\n"
    )
    limits = Limits(fuel=10**10, memory_bytes=128 << 20, wall_s=30, stdout_bytes=1000)
    done = run_guest(runtime, code, [], limits)
    assert (done.exit_code, done.trap) == (0, None)
    assert done.stdout == b"head" + b"." * 996
    assert done.stdout_overflow
    assert len(done.stderr_tail) == limits.stderr_bytes and done.stderr_tail.endswith(b"tail")


def test_other_descriptors_refuse_writes_as_wasmtime_does(runtime: Runtime) -> None:
    # Every descriptor but 1 and 2 is read-only: wasmtime answered EBADF (8) for each.
    code = (
        "import os\n"
        "codes = []\n"
        "for fd in (0, 3, 42, 1 << 30):\n"
        "    try:\n"
        "        os.write(fd, b'x')\n"
        "    except OSError as error:\n"
        "        codes.append(error.errno)\n"
        "print(codes, os.write(1, b''), os.write(2, b'e'))\n"
    )
    done = run_guest(runtime, code, [], Limits(fuel=10**9, memory_bytes=64 << 20, wall_s=30))
    assert done.stdout == b"[8, 8, 8, 8] 0 1\n"
    assert done.stderr_tail == b"e"
