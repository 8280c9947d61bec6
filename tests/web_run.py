"""What the dashboard tests share: a data directory from a real small `swarm run`, a hostile
peer's claim added to it, and the `swarm` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from node.identity import Identity, sign_record
from node.store import RecordStore
from research_dag import Experiment, Outcome, Problem

ROOT = Path(__file__).resolve().parent.parent
LANDING = ROOT / "examples" / "landing_copy"
PEER = Identity.from_seed(b"\x42" * 32)
# What a hostile peer writes where a page shows it: a script, markup, controls and bidi.
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> \x1b]0;t\x07 \u202eevil"


def swarm(*args: str, data_dir: Path | None = None, timeout: float = 600
          ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if data_dir is not None:
        env["SWARM_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, check=False)


def real_run(data_dir: Path, iterations: int = 12, seed: int = 0) -> None:
    done = swarm("run", str(LANDING), "--iterations", str(iterations), "--seed", str(seed),
                 "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr


def add_hostile_claim(data_dir: Path) -> Experiment:
    """A peer's claim on the run's problem whose every free-text field is hostile (its score
    is NaN-free: a record cannot carry NaN)."""
    with RecordStore.open(data_dir / "records.sqlite") as store:
        problem = next(p for p in store.iter_records(kind="problem") if isinstance(p, Problem))
        baseline = next(e for e in store.iter_records(kind="experiment", problem=problem.id)
                        if isinstance(e, Experiment) and e.parent is None)
        claim = Experiment(problem=problem.id, parent=baseline.id, strategy=baseline.strategy,
                           mutation_kind=HOSTILE[:60], description=HOSTILE, hypothesis=HOSTILE,
                           outcome=Outcome(status="ok", score=0.5, items={HOSTILE[:40]: True},
                                           stderr_tail=HOSTILE),
                           author=PEER.peer_id, created_ms=baseline.created_ms + 1)
        signed = sign_record(claim, PEER)
        assert isinstance(signed, Experiment)
        store.add(signed)
        return signed
