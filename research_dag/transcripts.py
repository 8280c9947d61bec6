"""The Transcript record: every model call of one evaluation, in order, so that a peer can
replay the evaluation with the recorded responses and spot-check them with its own model."""

from __future__ import annotations

import hashlib
from typing import Annotated, ClassVar, Literal, Self, TypeAlias

from pydantic import Field, model_validator

from research_dag.canonical import canonical_encode
from research_dag.records import MAX_NAME, MAX_U63, Frozen, RecordBase, RecordId, ShortText

# A transcript travels in one gossip envelope (512 KiB): at most 256 calls, each response at
# most 16,000 characters, and all responses together at most 320,000 characters (UTF-8 may
# take up to 4 bytes a character, but model prose is nearly ASCII; a record too large for an
# envelope still travels by sync, whose limit is 4 MiB).
MAX_CALLS = 512
MAX_RESPONSE_CHARS = 16_000
MAX_TRANSCRIPT_CHARS = 320_000
CallKind: TypeAlias = Literal["complete", "judge"]
Digest: TypeAlias = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Tokens: TypeAlias = Annotated[int, Field(ge=0, le=MAX_U63)]
REQUEST_DOMAIN = "swarm-model-request/1"


def request_digest(kind: str, first: str, second: str, max_tokens: int) -> str:
    """SHA-256 of a request's canonical msgpack: what a transcript keeps of it. `first` and
    `second` are (system, user) for `complete` and (question, output) for `judge`, whose
    max_tokens is 0. Raises RecordError for text msgpack cannot carry (lone surrogates)."""
    data = canonical_encode([REQUEST_DOMAIN, kind, first, second, max_tokens])
    return hashlib.sha256(data).hexdigest()


class TranscriptCall(Frozen):
    """One model call: which request (its digest), what came back, from whom, at what cost.

    `cached`: served from this run's content-addressed cache of identical requests, not asked
    again (usage is the original call's, so per-evaluation limits count it the same way on
    every replay)."""

    kind: CallKind
    request: Digest
    response: Annotated[str, Field(max_length=MAX_RESPONSE_CHARS)]
    model: ShortText
    provider: ShortText
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cached: bool = False


class Transcript(RecordBase):
    """Every model call of one evaluation of one candidate, in the order the guest made them
    (both phases: the runner's `complete` calls, then the evaluator's `judge` calls). The
    experiment that reports the evaluation names it (`Experiment.transcript`)."""

    ADDED_FIELDS: ClassVar[frozenset[str]] = frozenset()

    kind: Literal["transcript"] = "transcript"
    problem: RecordId
    calls: list[TranscriptCall] = Field(default_factory=list, max_length=MAX_CALLS)
    # Why the evaluation's model use ended early ("" when it did not): a per-evaluation limit
    # ("calls", "tokens", "prompt_bytes", "request") the replay must reach at the same call.
    stopped: Annotated[str, Field(max_length=MAX_NAME)] = ""

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        total = sum(len(call.response) for call in self.calls)
        if total > MAX_TRANSCRIPT_CHARS:
            raise ValueError(
                f"the responses hold {total} characters; a transcript holds at most "
                f"{MAX_TRANSCRIPT_CHARS}"
            )
        return self

    def usage(self) -> tuple[int, int]:
        """(input, output) tokens over every call."""
        return (sum(call.input_tokens for call in self.calls),
                sum(call.output_tokens for call in self.calls))
