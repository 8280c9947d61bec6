"""The model gateway: answers the model calls of evaluations (sandbox/model_door.py) under the
problem's per-evaluation limits, serves identical requests of a run from a content-addressed
cache, counts calls, tokens and dollars into the run's budget, and records every call, in
order, in the evaluation's transcript. Replays answer from a transcript instead."""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from node.llm.chat import (
    MAX_TOKEN_COUNT,
    BudgetMeter,
    LLMBadReply,
    LLMBudgetExceeded,
    LLMError,
    Usage,
)
from node.llm.providers import ModelProvider, ModelReply, Stopped, _never, judge_verdict
from research_dag import (
    MAX_CALLS,
    MAX_RESPONSE_CHARS,
    MAX_TRANSCRIPT_CHARS,
    CallKind,
    ModelLimits,
    Problem,
    RecordError,
    Transcript,
    TranscriptCall,
    request_digest,
)
from sandbox import DoorFailure, answer_frame, error_frame

MAX_TOKENS_ASKED = 1_000_000  # the most `max_tokens` one request may name
CACHE_ENTRIES = 4096


@dataclass(frozen=True)
class Request:
    """One parsed request frame."""

    kind: CallKind
    first: str  # system (complete) or question (judge)
    second: str  # user (complete) or output (judge)
    max_tokens: int  # 0 for judge
    digest: str

    @property
    def prompt_bytes(self) -> int:
        return len(self.first.encode("utf-8")) + len(self.second.encode("utf-8"))


def parse_request(frame: bytes) -> Request | str:
    """The request a guest's frame holds, or why it holds none (hostile bytes never raise)."""
    try:
        raw: Any = json.loads(frame.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "the request is not a JSON object"
    if not isinstance(raw, dict):
        return "the request is not a JSON object"
    kind = raw.get("kind")
    if kind == "complete":
        fields, max_tokens = (raw.get("system"), raw.get("user")), raw.get("max_tokens")
        if type(max_tokens) is not int or not 0 < max_tokens <= MAX_TOKENS_ASKED:
            return f"max_tokens must be an int in 1..{MAX_TOKENS_ASKED}"
    elif kind == "judge":
        fields, max_tokens = (raw.get("question"), raw.get("output")), 0
    else:
        return "the request's kind is neither complete nor judge"
    first, second = fields
    if not isinstance(first, str) or not isinstance(second, str):
        return "the request's texts are not strings"
    try:
        digest = request_digest(kind, first, second, max_tokens)
    except RecordError:
        return "the request's texts are not valid Unicode (lone surrogates)"
    return Request(kind, first, second, max_tokens, digest)


def _clean(text: str) -> str:
    """A reply as a transcript can carry it: valid UTF-8, at most MAX_RESPONSE_CHARS."""
    return text.encode("utf-8", "replace").decode("utf-8")[:MAX_RESPONSE_CHARS]


def _checked(reply: ModelReply) -> ModelReply:
    """A provider's reply as the gateway may count it: text, token counts a transcript can
    carry (0 .. 2^63-1) and a finite, non-negative cost. A server that reports -5 or 1e30
    prompt tokens is a bad reply (LLMBadReply: the provider failed), never a negative charge
    against the run's budget nor an exception out of the model door into the node."""
    counts = (reply.input_tokens, reply.output_tokens)
    if not isinstance(reply.text, str) or any(
        type(count) is not int or not 0 <= count <= MAX_TOKEN_COUNT for count in counts
    ):
        raise LLMBadReply("the reply's text or token counts are not what a model reports")
    cost = reply.cost_usd
    if type(cost) not in (int, float) or not math.isfinite(cost) or cost < 0:
        raise LLMBadReply("the reply's cost is not a finite, non-negative number")
    return reply


@dataclass(frozen=True)
class Answered:
    """A reply to one request and where it came from."""

    reply: ModelReply
    provider: str
    model: str
    cached: bool = False


@dataclass(frozen=True)
class RunUsage:
    """What a run's model calls came to (evaluations only; the mutator counts its own)."""

    calls: int = 0  # asked of a provider
    cached: int = 0  # served from the run's cache
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class ModelGateway:
    """One per run (or node): the provider, the cache and the totals. Thread-safe: evaluations
    run in worker threads, several at once in a swarm."""

    def __init__(
        self, provider: ModelProvider, budget: BudgetMeter | None = None,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self.provider = provider
        self.budget = budget
        self._cache: OrderedDict[tuple[str, int], ModelReply] = OrderedDict()
        self._cache_entries = cache_entries
        self._lock = threading.Lock()
        self._usage = RunUsage()

    @property
    def usage(self) -> RunUsage:
        return self._usage

    def session(self, problem: Problem) -> GatewaySession:
        """The door for one evaluation of `problem` (its `[model]` limits, else defaults)."""
        return GatewaySession(self, problem.id, problem.model or ModelLimits())

    def replay_session(self, transcript: Transcript, limits: ModelLimits) -> ReplaySession:
        """The door for a replay of an evaluation with its recorded responses."""
        return ReplaySession(transcript, limits)

    def spot_session(
        self, transcript: Transcript, limits: ModelLimits, fresh: frozenset[int]
    ) -> SpotSession:
        """The door for a spot check: the calls at `fresh` asked again of our provider."""
        return SpotSession(transcript, limits, self, fresh)

    def differs(self, request: Request, recorded: TranscriptCall) -> bool | DoorFailure:
        """Does our provider answer `request` otherwise than `recorded` (asked afresh, outside
        the cache)? A provider that gives no answer now says why (a DoorFailure): the check
        could not run, which is no answer either way. Token counts are part of the answer: the
        per-evaluation `max_tokens` limit counts the recorded ones, so a transcript
        understating them made a candidate over the limit replay as `ok`."""
        try:
            fresh = self.ask(request, 0, cache=False)
        except LLMBudgetExceeded as error:
            return DoorFailure("error", "budget", str(error)[:300])
        except LLMError as error:
            return DoorFailure("error", "provider", f"{type(error).__name__}: {error}"[:300])
        reply = fresh.reply
        return (_clean(reply.text), reply.input_tokens, reply.output_tokens) != (
            recorded.response, recorded.input_tokens, recorded.output_tokens)

    def ask(
        self, request: Request, occurrence: int, cache: bool = True, stopped: Stopped = _never
    ) -> Answered:
        """The provider's reply, or the cached one for the `occurrence`-th identical request of
        an evaluation (the n-th repeat of a request gets the n-th reply the run has seen, so
        repeated samples stay distinct). Raises LLMError (LLMBudgetExceeded once the run's
        budget is spent)."""
        provider = self.provider
        key = (f"{provider.name}/{provider.model}/{request.digest}", occurrence)
        with self._lock:
            hit = self._cache.get(key) if cache else None
            if hit is not None:
                self._cache.move_to_end(key)
                self._usage = replace(self._usage, cached=self._usage.cached + 1)
                return Answered(hit, provider.name, provider.model, cached=True)
            if self.budget is not None:
                self.budget.check()
        if request.kind == "complete":
            reply = provider.complete(request.first, request.second, request.max_tokens, stopped)
        else:
            reply = provider.judge(request.first, request.second, stopped)
        reply = _checked(reply)
        reply = replace(reply, text=_clean(reply.text))
        with self._lock:
            u = self._usage
            self._usage = RunUsage(u.calls + 1, u.cached, u.input_tokens + reply.input_tokens,
                                   u.output_tokens + reply.output_tokens,
                                   u.cost_usd + reply.cost_usd)
            if self.budget is not None:
                self.budget.add(Usage(reply.input_tokens, reply.output_tokens, reply.cost_usd))
            if cache:
                self._cache[key] = reply
                while len(self._cache) > self._cache_entries:
                    self._cache.popitem(last=False)
        return Answered(reply, provider.name, provider.model)


class DoorSession:
    """One evaluation's door: limits, the transcript so far, the first failure. Subclasses say
    where replies come from (`_reply`)."""

    def __init__(self, problem_id: str, limits: ModelLimits) -> None:
        self.problem_id = problem_id
        self.limits = limits
        self.calls: list[TranscriptCall] = []
        self.requests: list[Request] = []  # in full, for a verifier's spot check
        self.failure: DoorFailure | None = None
        self._tokens = 0
        self._chars = 0
        self._seen: dict[str, int] = {}  # digest -> how many times asked so far
        self._stopped: Stopped = _never  # the run's, while a call is answered

    def _reply(self, request: Request, index: int, occurrence: int) -> Answered | DoorFailure:
        raise NotImplementedError

    def _fail(self, failure: DoorFailure) -> bytes:
        if self.failure is None:
            self.failure = failure
        return self._refusal()

    def _refusal(self) -> bytes:
        failure = self.failure
        assert failure is not None
        return error_frame("limit" if failure.kind == "limit" else "model", failure.message)

    def oversized(self, length: int) -> bytes:
        return self._fail(DoorFailure(
            "limit", "prompt_bytes", f"a request of {length} bytes; this problem allows "
            f"{self.limits.max_prompt_bytes} bytes of prompt per request"))

    def answer(self, frame: bytes, stopped: Stopped = _never) -> bytes:
        self._stopped = stopped
        if self.failure is not None:
            return self._refusal()  # every call after the first failure fails the same way
        request = parse_request(frame)
        if isinstance(request, str):
            return self._fail(DoorFailure("limit", "request", request))
        limits = self.limits
        if request.prompt_bytes > limits.max_prompt_bytes:
            return self._fail(DoorFailure(
                "limit", "prompt_bytes", f"a prompt of {request.prompt_bytes} bytes; this "
                f"problem allows {limits.max_prompt_bytes} per request"))
        max_calls = min(limits.max_calls, MAX_CALLS)
        if len(self.calls) >= max_calls:
            return self._fail(DoorFailure(
                "limit", "calls", f"call {len(self.calls) + 1}; this problem allows "
                f"{max_calls} model calls per evaluation"))
        if self._tokens >= limits.max_tokens:
            return self._fail(DoorFailure(
                "limit", "tokens", f"{self._tokens} tokens used; this problem allows "
                f"{limits.max_tokens} per evaluation"))
        occurrence = self._seen.get(request.digest, 0)
        got = self._reply(request, len(self.calls), occurrence)
        if isinstance(got, DoorFailure):
            return self._fail(got)
        text = _clean(got.reply.text)
        if self._chars + len(text) > MAX_TRANSCRIPT_CHARS:
            return self._fail(DoorFailure(
                "limit", "transcript", f"the replies exceed {MAX_TRANSCRIPT_CHARS} characters "
                "per evaluation"))
        self._seen[request.digest] = occurrence + 1
        self._chars += len(text)
        self._tokens += got.reply.input_tokens + got.reply.output_tokens
        self.requests.append(request)
        self.calls.append(TranscriptCall(
            kind=request.kind, request=request.digest, response=text,
            model=got.model[:200], provider=got.provider[:200],
            input_tokens=got.reply.input_tokens, output_tokens=got.reply.output_tokens,
            cached=got.cached,
        ))
        if request.kind == "judge":
            return answer_frame({"verdict": judge_verdict(text), "text": text})
        return answer_frame({"text": text})

    def transcript(self, author: str = "local") -> Transcript:
        stopped = ""
        if self.failure is not None and self.failure.kind == "limit":
            stopped = self.failure.reason
        return Transcript(problem=self.problem_id, calls=list(self.calls), stopped=stopped,
                          author=author)


class GatewaySession(DoorSession):
    """A live evaluation: replies from the gateway (its cache, else its provider)."""

    def __init__(self, gateway: ModelGateway, problem_id: str, limits: ModelLimits) -> None:
        super().__init__(problem_id, limits)
        self.gateway = gateway

    def _reply(self, request: Request, index: int, occurrence: int) -> Answered | DoorFailure:
        try:
            return self.gateway.ask(request, occurrence, stopped=self._stopped)
        except LLMBudgetExceeded as error:
            return DoorFailure("error", "budget", str(error))
        except LLMError as error:
            return DoorFailure("error", "provider", f"{type(error).__name__}: {error}"[:300])


class ReplaySession(DoorSession):
    """A replay: the n-th call is answered with the transcript's n-th response, if it is the
    same request; any other request (or one too many) means the evaluation does not follow
    its transcript, and the replay fails (`error`: a mismatch)."""

    def __init__(self, transcript: Transcript, limits: ModelLimits) -> None:
        super().__init__(transcript.problem, limits)
        self.recorded = transcript.calls

    def _reply(self, request: Request, index: int, occurrence: int) -> Answered | DoorFailure:
        if index >= len(self.recorded):
            return DoorFailure("error", "replay", f"call {index + 1} is not in the transcript "
                               f"({len(self.recorded)} calls)")
        call = self.recorded[index]
        if (call.kind, call.request) != (request.kind, request.digest):
            return DoorFailure("error", "replay", f"call {index + 1} is not the request the "
                               "transcript recorded")
        reply = ModelReply(call.response, call.input_tokens, call.output_tokens)
        return Answered(reply, call.provider, call.model, cached=call.cached)

    def followed(self) -> bool:
        """Did the replay make exactly the recorded calls, no more and no fewer?"""
        failed = self.failure is not None and self.failure.kind != "limit"
        return not failed and len(self.calls) == len(self.recorded)


class SpotSession(ReplaySession):
    """A spot check: recorded responses, except for the calls at `fresh` and any request the
    transcript does not hold at its place, which the verifier's own gateway answers."""

    def __init__(
        self, transcript: Transcript, limits: ModelLimits, gateway: ModelGateway,
        fresh: frozenset[int],
    ) -> None:
        super().__init__(transcript, limits)
        self.gateway = gateway
        self.fresh = fresh

    def _reply(self, request: Request, index: int, occurrence: int) -> Answered | DoorFailure:
        recorded = index < len(self.recorded) and (
            (self.recorded[index].kind, self.recorded[index].request)
            == (request.kind, request.digest))
        if recorded and index not in self.fresh:
            return super()._reply(request, index, occurrence)
        try:
            return self.gateway.ask(request, occurrence, cache=False, stopped=self._stopped)
        except LLMBudgetExceeded as error:
            return DoorFailure("error", "budget", str(error))
        except LLMError as error:
            return DoorFailure("error", "provider", f"{type(error).__name__}: {error}"[:300])


class EditingSession(GatewaySession):
    """A liar's door (simulations, benches, tests): the calls at `edits` get the given text
    instead of the model's reply; the rest are asked as usual. Scoring the edited responses
    honestly gives a claim whose replay matches: only a spot check can tell."""

    def __init__(self, gateway: ModelGateway, problem: Problem,
                 edits: dict[int, str]) -> None:
        super().__init__(gateway, problem.id, problem.model or ModelLimits())
        self.edits = edits

    def _reply(self, request: Request, index: int, occurrence: int) -> Answered | DoorFailure:
        got = super()._reply(request, index, occurrence)
        if isinstance(got, DoorFailure) or index not in self.edits:
            return got
        return replace(got, reply=replace(got.reply, text=self.edits[index]), cached=False)
