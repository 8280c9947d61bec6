"""Trust: whether a replay reproduces a claim, what the swarm's verifications say about an
experiment, each author's standing, which pending claims to replay first, and the budget that
keeps replays from starving research."""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from node.net import bound_negatives
from node.spot_retries import Unchecked
from research_dag import (
    Experiment,
    Header,
    Outcome,
    Record,
    SpotCheck,
    Transcript,
    Verification,
    canonical_encode,
)

Verdict = Literal["own", "verified", "disputed", "pending"]
# Votes kept per experiment: `k` matches decide, so a bound far above it loses nothing honest;
# beyond it a vote replaces one whose author does not vouch (fresh identities cost nothing).
MAX_VOTES = 64


@dataclass(frozen=True)
class TrustConfig:
    """Every number of the trust rules; docs/protocol.md section 9 states each one."""

    k: int = 2  # independent matching replays (not by the author) for "verified"
    replay_ratio: float = 1.0  # replays earned per own evaluation
    replay_burst: float = 4.0  # most replays that can be saved up
    match_reward: float = 0.25  # standing per claim of theirs our replay reproduced
    mismatch_penalty: float = 1.0  # standing per failed replay or inconsistent record
    standing_floor: float = -2.0  # below this, an author's records are ignored
    # Fed to the gossip layer's application-specific peer score per mismatch, and given back
    # per match in the same proportion (50 per point of standing).
    score_penalty: float = 50.0
    # Claims that would not improve our best: this share of them, drawn by a hash of our peer
    # id and the claim's id, is replayed when the budget has room (and every claim of an
    # author none of whose claims we have replayed yet), so every author's standing is measured.
    sample_rate: float = 0.25
    sample_queue: int = 64  # most sampled claims waiting (oldest dropped first)
    claim_ttl_rounds: int = 50  # a queued claim not replayed within this many rounds expires
    # Negative standing (and negative gossip score) halves every this many rounds: the way
    # back for a peer that failed a replay once; positive standing does not decay.
    standing_half_life_rounds: float = 100.0
    # A model-backed claim whose spot check could not run (our model failed, our budget is
    # spent) gets no Verification: it is tried again after 2, 4, 8 rounds, then given up.
    spot_attempts: int = 4
    spot_backoff_rounds: int = 2

    @property
    def score_reward(self) -> float:
        return self.score_penalty * self.match_reward / self.mismatch_penalty

    @property
    def decay_per_round(self) -> float:
        return float(0.5 ** (1.0 / self.standing_half_life_rounds))


def outcomes_match(claimed: Outcome, replayed: Outcome) -> bool:
    """Bit-identical status, score, checklist, details and fuel. A timeout is never
    reproducible. Details count: the noise gate pairs a verified claim's `case:<id>` details
    with ours and the LLM mutator reads its `out:<id>`, so a claim whose score replays but
    whose cases are forged must not verify (docs/security.md, "A malicious peer")."""
    if "timeout" in (claimed.status, replayed.status):
        return False
    return (
        claimed.status == replayed.status
        and claimed.score == replayed.score
        and claimed.items == replayed.items
        and claimed.strategy_fuel == replayed.strategy_fuel
        and claimed.evaluator_fuel == replayed.evaluator_fuel
        and _details(claimed) == _details(replayed)
    )


def _details(outcome: Outcome) -> list[list[str | float | int | bool]]:
    """The details as compared: each value with its type (1, 1.0 and True differ, as in the
    canonical bytes), -0.0 as 0.0, in key order."""
    return sorted([key, type(value).__name__, value + 0.0 if isinstance(value, float) else value]
                  for key, value in outcome.details.items())


# A spot check by a model that may answer differently each time disputes a claim when the
# samples where the recorded response beat the fresh one are too many for chance: a one-sided
# sign test at this level (docs/protocol.md, "Model-backed claims").
SPOT_ALPHA = 0.05


@dataclass(frozen=True)
class ModelCheck:
    """A verifier's check of a model-backed claim: the outcome it got (the replay's, or on a
    dispute the spot check's worst evaluation, so that `match` agrees with `outcomes_match`)
    and how the spot check went."""

    outcome: Outcome
    match: bool
    spot_check: SpotCheck | None


@runtime_checkable
class ModelVerifier(Protocol):
    """The evaluation of a model-backed problem, which verifies a claim with its transcript
    (node/model_evaluations.py), or says that its spot check could not run (`Unchecked`: no
    verdict either way)."""

    def verify(
        self, strategy: Mapping[str, str], claimed: Outcome, transcript: Transcript, seed: str
    ) -> ModelCheck | Unchecked: ...


def spot_disputes(spot: SpotCheck, exact: bool) -> bool:
    """Does the spot check dispute the recorded responses? `exact`: the verifier asked the
    recorded model, which answers every request the same way (the stand-in), so one sample
    whose recorded response beat the fresh one is proof of an edit. Otherwise the sign test:
    the chance of that many recorded wins among the decided samples, were both equally likely,
    is below SPOT_ALPHA."""
    wins, losses = spot.recorded_better, spot.fresh_better
    if wins == 0:
        return False
    if exact:
        return True
    decided = wins + losses
    tail: float = sum(math.comb(decided, k) for k in range(wins, decided + 1)) / 2**decided
    return tail < SPOT_ALPHA


def spot_seed(me: str, claim_id: str, sign: Callable[[bytes], bytes]) -> str:
    """What draws the calls a receiver's spot check samples from a claim: its peer id, the
    claim's id and its own (deterministic, Ed25519) signature of the claim's id, so the draw
    is the same after a restart and differs on every node, but no claimant can compute it.
    Drawn from the peer id and claim id alone (both public), a liar could compute every
    receiver's sample before publishing and edit only calls that nobody checks."""
    secret = sign(b"swarm-spot-check/" + claim_id.encode())
    return f"{me}/{claim_id}/{secret.hex()}"


def detection_odds(calls: int, edited: int, sampled: int) -> float:
    """The chance that a spot check of `sampled` of `calls` responses (drawn without
    replacement) meets at least one of `edited` edited ones: 1 - C(n-k, s) / C(n, s)."""
    if edited <= 0 or sampled <= 0:
        return 0.0
    sampled = min(sampled, calls)
    return 1.0 - math.comb(calls - edited, sampled) / math.comb(calls, sampled)


def outcome_key(outcome: Outcome) -> bytes | None:
    """What `outcomes_match` compares, as 16 bytes: two outcomes match exactly when their keys
    are equal and not None (a timeout's key is None)."""
    if outcome.status == "timeout":
        return None
    score = None if outcome.score is None else outcome.score + 0.0  # -0.0 == 0.0: one key
    data = canonical_encode([outcome.status, score, sorted(outcome.items.items()),
                             outcome.strategy_fuel, outcome.evaluator_fuel, _details(outcome)])
    return hashlib.blake2b(data, digest_size=16).digest()


class Vote(NamedTuple):
    """What the ledger keeps of a verification: who replayed, what they said, and the key of
    the outcome they got (compared with the claim's when it is judged, which may arrive after
    the verification). A whole Verification record was ~10x the memory, kept forever."""

    author: str
    match: bool
    outcome: bytes | None


@dataclass
class ReplayBudget:
    """A token bucket: own evaluations earn replays, so a flood of claims cannot starve
    the node's own research."""

    ratio: float
    burst: float
    tokens: float = 1.0

    def earn(self) -> None:
        self.tokens = min(self.burst, self.tokens + self.ratio)

    def spend(self) -> bool:
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class PendingClaims:
    """Peers' claims waiting for our replay, best first, each until it is replayed, discarded
    or `expire`d.

    Holds up to `2 * limit` and then keeps the best `limit`: trimming in bulk costs one sort
    per `limit` arrivals instead of a scan per arrival (at 300 simulated nodes the per-arrival
    scan was a tenth of a round's CPU).
    """

    def __init__(self, limit: int, rank: Callable[[Experiment], float]) -> None:
        self.limit = limit
        self._rank = rank
        self._pending: dict[str, Experiment] = {}
        self._since: dict[str, int] = {}  # claim id -> the round it was queued in
        self.expired = 0

    def add(self, experiment: Experiment, now: int = 0) -> None:
        self._pending[experiment.id] = experiment
        self._since.setdefault(experiment.id, now)
        if len(self._pending) > 2 * self.limit:
            kept = self.best_first()[: self.limit]
            self._pending = {claim.id: claim for claim in kept}
            self._since = {claim.id: self._since[claim.id] for claim in kept}

    def discard(self, experiment_id: str) -> None:
        self._pending.pop(experiment_id, None)
        self._since.pop(experiment_id, None)

    def expire(self, now: int, ttl: int) -> int:
        """Drop the claims queued more than `ttl` rounds before `now`; how many."""
        old = [claim_id for claim_id, since in self._since.items() if now - since > ttl]
        for claim_id in old:
            self.discard(claim_id)
        self.expired += len(old)
        return len(old)

    def best_first(self) -> list[Experiment]:
        """Highest rank first; equal ranks in arrival order (sorted is stable)."""
        return sorted(self._pending.values(), key=self._rank, reverse=True)

    def __contains__(self, experiment_id: object) -> bool:
        return experiment_id in self._pending

    def __len__(self) -> int:
        return len(self._pending)


@dataclass
class Ledger:
    """This node's view of trust, rebuilt from records and its own replays."""

    me: str
    config: TrustConfig = field(default_factory=TrustConfig)
    standing: dict[str, float] = field(default_factory=dict)
    # experiment id -> peers' votes on it (a set: the same verification arrives by gossip and
    # sync), at most MAX_VOTES each
    votes: dict[str, set[Vote]] = field(default_factory=dict)
    my_replays: dict[str, bool] = field(default_factory=dict)  # experiment id -> matched
    measured_authors: set[str] = field(default_factory=set)  # authors we replayed a claim of

    def standing_of(self, author: str) -> float:
        return self.standing.get(author, 0.0)

    def penalise(self, author: str, amount: float) -> None:
        """Lower a (peer's) standing for a record it signed that we refuse: any identity can,
        so the table keeps at most MAX_TRACKED entries (node/net/bounded_table.py)."""
        self.standing[author] = self.standing_of(author) - amount
        bound_negatives(self.standing)

    def ignored(self, author: str) -> bool:
        return author != self.me and self.standing_of(author) < self.config.standing_floor

    def note(self, verification: Verification) -> None:
        # Interned: thousands of votes by a few authors share their peer id strings.
        vote = Vote(sys.intern(verification.author), verification.match,
                    outcome_key(verification.outcome))
        found = self.votes.setdefault(verification.experiment, set())
        if vote in found:
            return
        if len(found) >= MAX_VOTES:
            idle = next((v for v in found if not self.vouches(v.author)), None)
            if idle is None:
                return
            found.discard(idle)
        found.add(vote)

    def voted_on(self, experiment_id: str) -> bool:
        """Are votes on this experiment noted (so judging it needs its outcome)?"""
        return experiment_id in self.votes

    def record_replay(self, experiment: Experiment | Header, matched: bool) -> None:
        """Our own replay is ground truth for us: it moves the author's standing."""
        if experiment.id in self.my_replays:
            return
        self.my_replays[experiment.id] = matched
        author = experiment.author
        self.measured_authors.add(author)
        if matched:
            self.standing[author] = self.standing_of(author) + self.config.match_reward
        else:
            self.standing[author] = self.standing_of(author) - self.config.mismatch_penalty

    def measured(self, author: str) -> bool:
        """Have we replayed any claim of `author`'s (so its standing says something)?"""
        return author in self.measured_authors

    def sampled(self, experiment_id: str) -> bool:
        """Is this claim in our deterministic random sample? A hash of our peer id and the
        claim's id: the same answer after a restart, and different nodes sample different
        claims, so the swarm replays more of them than any one node."""
        digest = hashlib.sha256(f"{self.me}/{experiment_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") < self.config.sample_rate * 2**64

    def decay(self) -> None:
        """One round's way back: every negative standing moves toward 0 (half-life
        `standing_half_life_rounds`); positive standing, earned by reproduced claims, stays."""
        factor = self.config.decay_per_round
        for author, standing in self.standing.items():
            if standing < 0:
                self.standing[author] = standing * factor

    def trusted(self, experiment: Experiment) -> bool:
        """May this experiment become the parent of our next mutation? Stricter than
        `verified` (only our own evaluation or replay), so the loop's best is always one."""
        return experiment.author in (self.me, "local") or self.my_replays.get(experiment.id) is True

    def verified(self, experiment: Experiment) -> bool:
        """May this result be shown as a best? The one definition every view uses (issue 8,
        finding 12): our own evaluation; or our own replay matched; or, unless our replay
        failed, at least k peers in good standing other than the author reproduced it with
        every dispute answered (k more matches than mismatches). A forged claim is none of
        these, and neither is one vouched for by fresh identities (see `vouches`)."""
        if experiment.author in (self.me, "local"):
            return True
        mine = self.my_replays.get(experiment.id)
        if mine is not None:
            return mine
        return self._matches(experiment) - self._mismatches(experiment) >= self.config.k

    def verdict(self, experiment: Experiment) -> tuple[Verdict, int]:
        """The swarm's verdict on a claim (votes by peers in good standing only, `vouches`), and
        how many such peers reproduced it."""
        return self._verdict(experiment.id, experiment.author, experiment)

    def _verdict(
        self, claim_id: str, author: str, experiment: Experiment | None
    ) -> tuple[Verdict, int]:
        """`verdict`; `experiment` None: no votes on the claim were noted."""
        matches = 0 if experiment is None else self._matches(experiment)
        mismatches = 0 if experiment is None else self._mismatches(experiment)
        if author in (self.me, "local"):
            return "own", matches
        mine = self.my_replays.get(claim_id)
        if mine is True or (mine is None and matches - mismatches >= self.config.k):
            return "verified", matches
        if mine is False or mismatches:
            return "disputed", matches
        return "pending", matches

    def vouches(self, author: str) -> bool:
        """Does a replay by `author` count in `verified` and `verdict`? Ours does; a peer's
        only when our own replays reproduced some claim of theirs (positive standing). Peer ids
        cost nothing: k fresh identities signing `match` verified a forged claim, and one
        signing a mismatch kept an honest best from being shown and marked its author's claims
        disputed."""
        return author == self.me or self.standing_of(author) > 0

    def verdict_of(
        self, header: Header, load: Callable[[str], Record | None]
    ) -> tuple[Verdict, int]:
        """`verdict` of an experiment known by its DAG header: `load` brings the whole record
        only when votes on it were noted (their outcomes are compared with its own)."""
        experiment = load(header.id) if self.voted_on(header.id) else None
        return self._verdict(
            header.id, header.author, experiment if isinstance(experiment, Experiment) else None
        )

    def _voters(self, experiment: Experiment, match: bool) -> set[str]:
        votes = self.votes.get(experiment.id)
        if not votes:
            return set()
        claimed = outcome_key(experiment.outcome)
        return {
            v.author
            for v in votes
            if v.match is match
            and v.author != experiment.author
            # A vote whose flag contradicts its own outcome says nothing.
            and (claimed is not None and v.outcome == claimed) is match
            and self.vouches(v.author)
        }

    def _matches(self, experiment: Experiment) -> int:
        return len(self._voters(experiment, True))

    def _mismatches(self, experiment: Experiment) -> int:
        return len(self._voters(experiment, False))


def rebuild_ledger(me: str, records: Iterable[Verification], config: TrustConfig) -> Ledger:
    """The ledger after a restart: our own verifications restore our replays' verdicts."""
    ledger = Ledger(me=me, config=config)
    for verification in records:
        ledger.note(verification)
        if verification.author == me:
            ledger.my_replays[verification.experiment] = verification.match
    return ledger
