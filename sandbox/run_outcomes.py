"""What a phase's guest run comes to: the status of a run whose driver did not finish, the outcome
of a candidate refused before anything ran, and the evaluator's JSON report, checked and bounded."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from research_dag import MAX_NAME, MAX_STDERR_TAIL, MAX_U64, MIN_I64, Outcome, Status, is_utf8
from sandbox.drivers import EXIT_DONE, EXIT_INVALID_OUTPUT
from sandbox.host import HOST_FAULT_TRAP, GuestRun

MAX_ITEMS = 64
MAX_DETAILS = 32


class EvaluatorReport(BaseModel):
    """What evaluate.py must return; anything else is an invalid report."""

    model_config = ConfigDict(extra="ignore")
    score: float
    items: dict[str, bool] = Field(default_factory=dict, max_length=MAX_ITEMS)
    details: dict[str, float | int | bool | str] = Field(default_factory=dict)
    valid: bool = True

    @field_validator("score", mode="before")
    @classmethod
    def _real_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("score must be a number")
        return value

    # JSON's `"\ud800"` is a lone surrogate, which no record can hold (msgpack writes UTF-8):
    # an item or detail named so raised ValidationError out of the evaluation, and a detail
    # valued so made an outcome whose experiment could not be encoded. Shown as U+FFFD.
    @field_validator("items")
    @classmethod
    def _unicode_items(cls, value: dict[str, bool]) -> dict[str, bool]:
        return {_unicode(name): ok for name, ok in value.items()}

    @field_validator("details")
    @classmethod
    def _unicode_details(
        cls, value: dict[str, float | int | bool | str]
    ) -> dict[str, float | int | bool | str]:
        return {_unicode(key): _unicode(item) if isinstance(item, str) else item
                for key, item in value.items()}


def _unicode(text: str) -> str:
    return text if is_utf8(text) else text.encode("utf-16", "surrogatepass").decode(
        "utf-16", "replace")


def _tail(data: bytes, limit: int = MAX_STDERR_TAIL) -> str:
    text = data.decode("utf-8", errors="replace")
    return text[-limit:]


def _out_of_memory(run: GuestRun, stderr: str, memory_limit: int) -> bool:
    """Python reports a failed allocation as MemoryError; when memory is exhausted it may not
    even manage to print that cleanly, so a failure near the limit counts too."""
    lines = stderr.strip().splitlines()
    if lines and lines[-1].startswith("MemoryError"):
        return True
    return "MemoryError" in stderr and run.memory_bytes >= memory_limit * 0.9


def _failure(run: GuestRun, phase: int, memory_limit: int) -> tuple[Status, str] | None:
    """The status of a run whose driver did not finish, or None when it did."""
    stderr = _tail(run.stderr_tail)
    if run.trap == "out_of_fuel":
        return "out_of_fuel", stderr
    if run.trap == "timeout":
        return "timeout", stderr
    if run.trap == "out_of_memory":
        return "out_of_memory", stderr
    if run.trap is not None and run.trap.startswith(HOST_FAULT_TRAP):
        # The host failed (sandbox/host.py `_guarded`), not the guest: no verdict on the
        # strategy. "timeout" is the status of a run the host cut short, never deterministic,
        # never verified: a replay that hit it disputes nothing (node/swarm_claims.py).
        return "timeout", (stderr + f"\n[sandbox] host fault, not the strategy's: {run.trap}"
                           ).strip()
    if run.trap is not None:
        note = "stack overflow (recursion too deep)" if run.trap == "stack_overflow" else run.trap
        return "crash", (stderr + f"\n[sandbox] trap: {note}").strip()
    if run.exit_code == EXIT_DONE:
        return None
    if _out_of_memory(run, stderr, memory_limit):
        return "out_of_memory", stderr
    if run.exit_code == EXIT_INVALID_OUTPUT:
        return "invalid_output", stderr
    if phase == 1 and run.exit_code == 0:
        # Only proc_exit ends a strategy turn with 0 (the driver maps SystemExit(0) itself).
        return "invalid_output", (
            stderr + "\n[sandbox] no result: the strategy ended the interpreter itself "
            "(os._exit(0)) instead of returning from its entry point"
        ).strip()
    # Phase 2 raising means the evaluator rejected what the strategy produced.
    status: Status = "crash" if phase == 1 else "invalid_output"
    return status, (stderr + f"\n[sandbox] exit code {run.exit_code}").strip()


def _refused(why: str) -> Outcome:
    """A candidate that is not a strategy of this problem: nothing of it was run."""
    return Outcome(
        status="invalid",
        stderr_tail=f"[sandbox] {why}"[-MAX_STDERR_TAIL:],
        details={"failed_phase": 0},
    )


def _parse_report(data: bytes | None) -> tuple[EvaluatorReport | None, str]:
    if data is None:
        return None, "the evaluator printed no report"
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):
        return None, "the evaluator's report is not JSON"
    if not isinstance(raw, dict):
        return None, "the evaluator's report is not an object"
    try:
        report = EvaluatorReport.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return None, f"the evaluator's report is invalid: {where}: {first.get('msg')}"
    if not math.isfinite(report.score):
        return None, f"the evaluator reported a non-finite score ({report.score})"
    return report, ""


def _bounded_details(details: Mapping[str, float | int | bool | str]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in list(details.items())[:MAX_DETAILS]:
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if type(value) is int and not MIN_I64 <= value <= MAX_U64:  # JSON ints have no bound
            continue
        if isinstance(value, str):
            value = value[:MAX_NAME]
        kept[key[:MAX_NAME]] = value
    return kept
