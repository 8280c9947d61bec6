"""What a simulation is asked to run: nodes, problems, rounds, network kind and the faults to
inject (parsed from `swarm simulate --faults`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from research_dag import Problem

NetworkKind = Literal["memory", "libp2p"]


class FaultError(ValueError):
    """A --faults value that cannot be parsed; the message says what is accepted."""


@dataclass(frozen=True)
class Faults:
    liars: float = 0.0  # fraction of nodes that inflate their claims
    churn: float = 0.0  # fraction of nodes that crash mid-run and come back later
    partition: int = 0  # rounds the swarm is split in two (starting at a quarter of the run)
    spam: float = 0.0  # fraction of nodes that also publish garbage every round

    @classmethod
    def parse(cls, text: str) -> Faults:
        """`liars=0.3,churn=0.2,partition=60s,spam=0.1`; time is counted in rounds, so
        `60s` and `60` both mean 60 rounds (one round = one simulated second)."""
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, raw = part.partition("=")
            key = key.strip()
            if key not in ("liars", "churn", "partition", "spam") or not raw:
                raise FaultError(
                    f"unknown fault {part!r}: use liars=F, churn=F, spam=F (fractions 0..1) "
                    "and partition=N (rounds, e.g. 60s)"
                )
            try:
                if key == "partition":
                    values[key] = int(raw.strip().removesuffix("s"))
                else:
                    values[key] = float(raw)
            except ValueError:
                raise FaultError(f"fault {key} needs a number, not {raw!r}") from None
            if key != "partition" and not 0.0 <= values[key] <= 1.0:
                raise FaultError(f"fault {key} is a fraction between 0 and 1")
            if key == "partition" and values[key] < 0:
                raise FaultError("partition is a number of rounds >= 0")
        return cls(**values)


@dataclass(frozen=True)
class SimConfig:
    nodes: int
    problems: tuple[Problem, ...]
    rounds: int = 50
    network: NetworkKind = "memory"
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    degree: int = 6  # connections each new node makes (mesh degree at scale)
    sync_every: int = 5  # rounds between anti-entropy passes
    k: int = 2  # matching replays for "verified"
    stop_at_target: bool = True  # stop once every honest node has reached the target
    # Rounds between posing one problem and the next (0: all at the start): a problem posed
    # later starts from what the swarm learned on the earlier ones (issue 11).
    pose_every: int = 0
    max_problems: int = 3  # problems each node researches at once (NodeConfig.max_problems)
    # Keep node 0's store and identity here (records.sqlite, identity.key), so `swarm dag
    # --data-dir` can browse what it holds after the run; None: a temporary directory.
    data_dir: Path | None = None
