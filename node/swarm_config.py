"""What a swarm node is configured with (`NodeConfig`) and what it counts (`NodeStats`), and the
shape of the evaluator it is given for each problem."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from node.catalogue import MAX_PROBLEM_BYTES, MAX_PROBLEMS_HELD
from node.knowledge import CURATE_EVERY
from node.loop_config import LoopConfig
from node.net import DropCounter
from node.trust import TrustConfig
from research_dag import Budget, ModelLimits, Outcome, Problem
from sandbox import Evaluated

Evaluate = Callable[[Mapping[str, str]], Outcome | Evaluated]
EvaluatorFactory = Callable[[Problem], Evaluate]


@dataclass(frozen=True)
class NodeConfig:
    problems: Literal["all"] | tuple[str, ...] = "all"
    max_problems: int = 3  # problems researched at once
    trust: TrustConfig = field(default_factory=TrustConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    replay_queue: int = 256  # most adoption candidates kept (the best ones)
    liar: bool = False  # simulation fault: publish inflated claims
    # The most a stranger's problem may ask of this machine per evaluation (its fuel, memory
    # and wall time; None: no cap). A record allows 4 GiB and an hour, and a fresh problem is
    # joined first (fewest workers): without a cap, anyone could post problems that take a
    # joining node's memory and time. Our own problems, and ones chosen by id, are exempt.
    max_budget: Budget | None = field(default_factory=Budget)
    # Likewise the most a stranger's model-backed problem may ask of this node's model per
    # evaluation (`[model]` calls, tokens, prompt bytes; None: no cap): a record allows 512
    # calls and 10 M tokens an evaluation, paid by the joining node (`swarm join` has no money
    # budget), and each claim's spot check asks up to 8 evaluations' worth again.
    max_model: ModelLimits | None = field(default_factory=ModelLimits)
    # Whole records the node keeps in memory besides problems (the most recently used), and 4x
    # as many headers; every record, header and edge stays in the store (docs/storage.md).
    dag_cache: int = 2048
    curate_every: int = CURATE_EVERY  # rounds between derivations of the playbook (0: never)
    # Free disk space kept for the node's own records: below it, peers' records are not
    # stored (counted as the drop reason "disk"). Records are free to sign, by identities
    # free to make, so without a floor any peer could fill the disk and stop the node's own
    # writes. 1 GiB holds ~3 million of the node's own attempts (0.3 KB each, docs/storage.md).
    min_free_bytes: int = 1 << 30
    # Strangers' problems held, and their size in memory (files at full size): past either,
    # a new one is not taken (drop reason "catalogue"). Every problem is held whole in memory
    # and problem ids are free: without a bound, posting problems exhausted a node's memory
    # (node/catalogue.py). The node's own problems and those chosen by id always come in.
    max_problems_held: int = MAX_PROBLEMS_HELD
    max_problem_bytes: int = MAX_PROBLEM_BYTES


@dataclass
class NodeStats:
    evaluations: int = 0
    replays: int = 0
    replay_matches: int = 0
    disputes: int = 0
    adopted: int = 0  # peer experiments adopted as parents after a matching replay
    published: int = 0  # envelopes
    received: int = 0  # records taken in
    ignored: int = 0  # records from authors below the standing floor
    refused: int = 0  # valid records contradicting ones we hold (also in drops: inconsistent)
    sampled: int = 0  # replays of claims that would not improve our best (standing samples)
    expired: int = 0  # queued claims dropped unreplayed after claim_ttl_rounds
    # Spot checks of model-backed claims that could not run (our model failed, our budget is
    # spent): no Verification was made; and the claims given up after their last attempt,
    # with the latest reason (node/spot_retries.py)
    spot_unchecked: int = 0
    spot_given_up: int = 0
    spot_last_failure: str = ""
    derived: int = 0  # derived records this node made (patterns, hypotheses, verdicts)
    drops: DropCounter = field(default_factory=DropCounter)
