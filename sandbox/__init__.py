"""The WebAssembly sandbox: the only package importing wasmtime; runs untrusted code under limits.

`run(...)` style contract: evaluating a candidate never raises for anything the guest does;
every guest failure is an `Outcome` with a status.
"""

from sandbox.evaluation import Evaluator
from sandbox.host import GuestRun, Limits, Mount, run_guest
from sandbox.runtime import Runtime, RuntimeUnavailable, default_cache_dir, load_runtime

__all__ = [
    "Evaluator",
    "GuestRun",
    "Limits",
    "Mount",
    "Runtime",
    "RuntimeUnavailable",
    "default_cache_dir",
    "load_runtime",
    "run_guest",
]
