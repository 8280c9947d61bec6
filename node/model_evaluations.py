"""Evaluations of a problem whose runner or evaluator asks a model: each one through a door of
the run's model gateway, returned with its transcript; and a peer's claim verified in two steps,
a replay with its recorded responses, then a spot check of a sample with our own model.

The gateway itself lives in node/llm (which this layer does not import): it is passed in, as
anything with the three session makers below (node.llm.ModelGateway is one)."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from node.spot_retries import Unchecked
from node.trust import ModelCheck, outcomes_match, spot_disputes
from research_dag import (
    MAX_STDERR_TAIL,
    ModelLimits,
    Outcome,
    Problem,
    SpotCheck,
    Transcript,
    TranscriptCall,
)
from sandbox import DoorFailure, Evaluated, Evaluator, ModelDoor, failed_outcome

DEFAULT_SPOT_SAMPLES = 8
# The wall time of the checked evaluations of one check run again after their wall clock fired
# (our model having answered every call), all together: long enough that the budget's fuel, not
# the clock, ends them. A strategy that spins on any answer but its edited one timed out on a
# budget whose wall clock comes before its fuel, every check, and its liar was never disputed
# (docs/protocol.md section 9). Shared, so 8 samples cost at most this much more, not 8 times.
PATIENT_WALL_S = 120.0


class TranscribedDoor(ModelDoor, Protocol):
    """A door that keeps the calls it answered."""

    @property
    def calls(self) -> list[TranscriptCall]: ...

    def transcript(self, author: str = "local") -> Transcript: ...


class ReplayDoor(TranscribedDoor, Protocol):
    @property
    def requests(self) -> Sequence[Any]:
        """The requests it answered, in full (node.llm.gateway.Request)."""
        ...

    def followed(self) -> bool:
        """Did the evaluation make exactly the transcript's calls?"""
        ...


class ProviderName(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def deterministic(self) -> bool: ...


class Gateway(Protocol):
    """What this module needs of node.llm.ModelGateway."""

    @property
    def provider(self) -> ProviderName: ...

    def session(self, problem: Problem) -> TranscribedDoor: ...

    def replay_session(self, transcript: Transcript, limits: ModelLimits) -> ReplayDoor: ...

    def spot_session(
        self, transcript: Transcript, limits: ModelLimits, fresh: frozenset[int]
    ) -> ReplayDoor: ...

    def differs(self, request: Any, recorded: TranscriptCall) -> bool | DoorFailure:
        """Does our model answer `request` otherwise than `recorded`? (asked afresh; a
        DoorFailure when it gave no answer)"""
        ...


class DoorEvaluator(Protocol):
    """sandbox.Evaluator: one evaluation with a door for its model calls."""

    def evaluate(self, strategy: Mapping[str, str], door: ModelDoor | None = None) -> Outcome: ...


@dataclass
class ModelEvaluations:
    """The `evaluate` of a model-backed problem (a loop calls it: an Evaluated) that also
    verifies peers' claims of it (a swarm node calls `verify`)."""

    evaluator: DoorEvaluator
    problem: Problem
    gateway: Gateway
    spot_samples: int = DEFAULT_SPOT_SAMPLES
    patient_wall_s: float = PATIENT_WALL_S

    @property
    def limits(self) -> ModelLimits:
        return self.problem.model or ModelLimits()

    def __call__(self, strategy: Mapping[str, str]) -> Evaluated:
        door = self.gateway.session(self.problem)
        outcome = self.evaluator.evaluate(strategy, door)
        return Evaluated(outcome, door.transcript())

    def replay(self, strategy: Mapping[str, str], transcript: Transcript) -> Outcome:
        """The evaluation again, each call answered with its recorded response: the same
        score and fuel, bit for bit, when the claim scored those responses honestly."""
        return self._replay(strategy, transcript)[0]

    def _replay(
        self, strategy: Mapping[str, str], transcript: Transcript
    ) -> tuple[Outcome, Sequence[Any]]:
        """The replay's outcome and the requests it made (in full)."""
        if transcript.problem != self.problem.id:
            return _unverifiable(f"the transcript {transcript.id} is of another problem"), ()
        door = self.gateway.replay_session(transcript, self.limits)
        outcome = self.evaluator.evaluate(strategy, door)
        if door.failure is None and not door.followed():
            return failed_outcome(outcome, DoorFailure(
                "error", "replay", f"the evaluation made {len(door.calls)} model calls; its "
                f"transcript holds {len(transcript.calls)}")), ()
        return outcome, door.requests

    def verify(
        self, strategy: Mapping[str, str], claimed: Outcome, transcript: Transcript, seed: str
    ) -> ModelCheck | Unchecked:
        """Replay, then (when it matched and the claim scored) the spot check: `spot_samples`
        calls drawn by `seed` (our peer id and the claim's id), each asked again of our model
        in an evaluation of its own whose other calls keep their recorded responses. A sample
        whose fresh response scores worse than the claim is one where the recorded response
        passed more of the checklist (`spot_disputes` decides).

        Fails closed: when our model gives no answer a check needs (provider, budget) or a
        checked evaluation runs out of wall time even run again with `patient_wall_s` (the
        budget's fuel, not the clock, ends it then), the check stops there (`Unchecked`):
        no verdict, so the caller makes no Verification. Before, such a sample counted
        neither way (and the deterministic model's comparison found no differing answer), so
        the claim verified on its replay alone."""
        replayed, requests = self._replay(strategy, transcript)
        if not outcomes_match(claimed, replayed):
            return ModelCheck(replayed, False, None)
        if claimed.status != "ok" or claimed.score is None or not transcript.calls:
            return ModelCheck(replayed, True, None)
        if self.spot_samples <= 0:
            return ModelCheck(replayed, True, None)
        provider = self.gateway.provider
        exact = provider.deterministic and all(
            (call.provider, call.model) == (provider.name, provider.model)
            for call in transcript.calls)
        calls = len(transcript.calls)
        samples: list[frozenset[int]]
        if exact and len(requests) == calls:
            # The recorded model answers every request one way: ask it all of them again (no
            # evaluation), then evaluate once with every answer that differs asked afresh.
            # That evaluation is the honest one, so one evaluation checks every edit: a liar
            # editing all 512 responses made the verifier run 512 (one per differing call).
            found: set[int] = set()
            for index, (request, call) in enumerate(zip(requests, transcript.calls,
                                                        strict=True)):
                differs = self.gateway.differs(request, call)
                if isinstance(differs, DoorFailure):
                    return Unchecked(differs.reason, f"call {index + 1}: {differs.message}")
                if differs:
                    found.add(index)
            samples = [frozenset(found)] if found else []
            sampled = calls
        else:
            samples = [frozenset({index})
                       for index in spot_sample(seed, calls, self.spot_samples)]
            sampled = len(samples)
        metric = self.problem.metric
        recorded_better = fresh_better = 0
        worst: Outcome | None = None
        patience = self.patient_wall_s  # for every run again of this check, together
        for fresh in samples:
            door = self.gateway.spot_session(transcript, self.limits, fresh)
            mixed = self.evaluator.evaluate(strategy, door)
            if mixed.status == "timeout" and door.failure is None:
                # Our model answered every call and the wall clock fired: not a verdict (a
                # loaded machine), so once more with time for the whole fuel, which decides
                # the same on every machine (`out_of_fuel` is a recorded win, below).
                started = time.monotonic()
                door, mixed = self._patiently(strategy, transcript, fresh, patience, door, mixed)
                patience -= time.monotonic() - started
            if mixed.status == "timeout":
                # Our model gave no answer (provider, budget), or the evaluation ran out of
                # wall time even so: this sample says nothing, and a check short of its
                # samples checks less than it claims to. Stop: no verdict (tried again later).
                failure = door.failure
                if failure is not None and failure.kind == "error":
                    return Unchecked(failure.reason, failure.message[:300])
                return Unchecked("timeout", "a checked evaluation ran out of time")
            if mixed.status != "ok" or mixed.score is None:
                # The candidate fails on the model's own answer where the claim scored: the
                # recorded response did better. Before, such a sample counted neither way, so
                # a strategy that raised on any answer but the ones its author had edited in
                # was never disputed, not even against the stand-in.
                recorded_better += 1
                worst = mixed
            elif metric.better(claimed.score, mixed.score):
                recorded_better += 1
                if worst is None or (worst.score is not None
                                     and metric.better(worst.score, mixed.score)):
                    worst = mixed
            elif metric.better(mixed.score, claimed.score):
                fresh_better += 1
        spot = SpotCheck(sampled=min(sampled, 256), recorded_better=recorded_better,
                         fresh_better=fresh_better, model=provider.model[:200],
                         provider=provider.name[:200])
        if worst is not None and spot_disputes(spot, exact):
            return ModelCheck(worst, False, spot)
        return ModelCheck(replayed, True, spot)

    def _patiently(
        self, strategy: Mapping[str, str], transcript: Transcript, fresh: frozenset[int],
        wall_s: float, door: ReplayDoor, timed_out: Outcome,
    ) -> tuple[ReplayDoor, Outcome]:
        """The checked evaluation again with `wall_s` of wall time (what is left of the
        check's `patient_wall_s`): it then ends by its fuel (or finishes) unless this machine
        is too slow even for that (`timeout` again, no verdict). Only with a sandbox
        evaluator, whose problem it copies but for the wall time (the same inputs)."""
        evaluator = self.evaluator
        if not isinstance(evaluator, Evaluator) or wall_s <= evaluator.problem.budget.wall_s:
            return door, timed_out
        with evaluator.with_wall_time(wall_s) as longer:
            door = self.gateway.spot_session(transcript, self.limits, fresh)
            return door, longer.evaluate(strategy, door)


def spot_sample(seed: str, calls: int, samples: int) -> list[int]:
    """The calls a spot check asks again: `samples` of `calls`, drawn by `seed`
    (node.trust.spot_seed: the receiver's, which no claimant can compute), in order."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    return sorted(rng.sample(range(calls), min(samples, calls)))


def _unverifiable(why: str) -> Outcome:
    return Outcome(status="invalid", stderr_tail=f"[verify] {why}"[:MAX_STDERR_TAIL])


def unverifiable(why: str) -> ModelCheck:
    """The check of a claim that cannot be replayed as it stands (no transcript, another
    problem's): a mismatch."""
    return ModelCheck(_unverifiable(why), False, None)
