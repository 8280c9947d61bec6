"""The WebAssembly sandbox: the only package importing wasmtime; runs untrusted code under limits.

`run(...)` style contract: evaluating a candidate never raises for anything the guest does;
every guest failure is an `Outcome` with a status.
"""

from sandbox.evaluation import Evaluator
from sandbox.heuristic import HARNESS, is_heuristic
from sandbox.host import GuestRun, Limits, Mount, run_guest
from sandbox.model_door import (
    DoorFailure,
    Evaluated,
    ModelDoor,
    answer_frame,
    error_frame,
    failed_outcome,
)
from sandbox.runtime import Runtime, RuntimeUnavailable, default_cache_dir, load_runtime

__all__ = [
    "HARNESS",
    "DoorFailure",
    "Evaluated",
    "Evaluator",
    "GuestRun",
    "Limits",
    "ModelDoor",
    "Mount",
    "Runtime",
    "RuntimeUnavailable",
    "answer_frame",
    "default_cache_dir",
    "error_frame",
    "failed_outcome",
    "is_heuristic",
    "load_runtime",
    "run_guest",
]
