"""A model's latency is not the guest's wall time (sandbox/deadline.py): a call slower than the
whole wall budget still lets the run finish, the time a run may wait on models is bounded on
its own, and a Ctrl-C during a call in flight stops the run within the usual bound. The doors
here stand for slow providers: each blocks on a threading.Event, polling `stopped` as the real
providers do (node/llm/providers.py, every 50 ms)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from sandbox import DoorFailure, GuestRun, Limits, Runtime, run_guest
from sandbox.deadline import DEADLINE_SLACK_S, STOP_WAIT_S

WALL_S = 0.5
POLL_S = 0.01
# One call, then work of the guest's own: its wall time counts from before the call.
CALL_THEN_SPIN = """import _host, time
answer = _host.call(b'{"kind": "judge", "question": "q", "output": "o"}')
print(answer.decode())
"""


class SlowDoor:
    """A model door whose provider answers when `release` is set, or gives up when its run
    is stopped (a Ctrl-C, or the run's model time spent)."""

    def __init__(self, latency_s: float | None = None) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.latency_s = latency_s  # set: the provider answers after this long
        self.gave_up = False

    def answer(self, frame: bytes, stopped: Callable[[], bool] = lambda: False) -> bytes:
        self.entered.set()
        answer_at = None if self.latency_s is None else time.monotonic() + self.latency_s
        while not self.release.wait(POLL_S):
            if stopped():
                self.gave_up = True
                return json.dumps({"error": "model", "message": "stopped"}).encode()
            if answer_at is not None and time.monotonic() >= answer_at:
                break  # a slow provider's reply, late but there
        return json.dumps({"verdict": True, "text": "yes"}).encode()

    def oversized(self, length: int) -> bytes:
        return b'{"error": "limit", "message": "too long"}'

    @property
    def failure(self) -> DoorFailure | None:
        return None


def _run(runtime: Runtime, door: SlowDoor, code: str, model_wait_s: float = 600.0
         ) -> tuple[GuestRun, float]:
    limits = Limits(fuel=10**15, memory_bytes=128 << 20, wall_s=WALL_S,
                    model_wait_s=model_wait_s)
    started = time.monotonic()
    done = run_guest(runtime, code, [], limits, door=door)
    return done, time.monotonic() - started


def test_a_model_call_slower_than_the_wall_budget_does_not_time_the_run_out(
    runtime: Runtime,
) -> None:
    door = SlowDoor(latency_s=3 * WALL_S)  # the provider's latency, longer than wall_s
    done, elapsed = _run(runtime, door, CALL_THEN_SPIN)
    assert done.trap is None and done.exit_code in (None, 0), done.stderr_tail
    assert b'"verdict": true' in done.stdout
    assert elapsed >= 3 * WALL_S and not door.gave_up


def test_the_guests_own_time_still_counts_after_a_model_call(runtime: Runtime) -> None:
    door = SlowDoor(latency_s=WALL_S)
    done, elapsed = _run(runtime, door, CALL_THEN_SPIN + "while True:\n    pass\n")
    assert done.trap == "timeout"
    # The call's WALL_S, then the guest's own WALL_S, then at most the slack.
    assert 2 * WALL_S <= elapsed <= 2 * WALL_S + DEADLINE_SLACK_S


def test_a_run_waits_on_models_no_longer_than_its_model_time(runtime: Runtime) -> None:
    door = SlowDoor()  # never answers on its own
    model_wait_s = 0.3
    done, elapsed = _run(runtime, door, CALL_THEN_SPIN + "while True:\n    pass\n",
                         model_wait_s=model_wait_s)
    assert door.gave_up
    assert done.trap == "timeout"  # stopped at once: the guest gets no more of its time
    assert elapsed <= model_wait_s + DEADLINE_SLACK_S


def test_a_ctrl_c_during_a_model_call_stops_the_run_within_the_bound(runtime: Runtime) -> None:
    door = SlowDoor()
    result: list[GuestRun] = []
    worker = threading.Thread(target=lambda: result.append(
        run_guest(runtime, CALL_THEN_SPIN + "while True:\n    pass\n", [],
                  Limits(fuel=10**15, memory_bytes=128 << 20, wall_s=600.0), door=door)))
    worker.start()
    assert door.entered.wait(STOP_WAIT_S)
    interrupted = time.monotonic()
    runtime.ticker.interrupt_all()  # what Ctrl-C does (sandbox/deadline.py)
    worker.join(STOP_WAIT_S)
    assert not worker.is_alive()
    assert time.monotonic() - interrupted <= DEADLINE_SLACK_S
    assert door.gave_up and result[0].trap == "interrupted"
