"""A simulated swarm on a problem that asks a model (issue 13): every node evaluates it and
verifies its peers' claims through the gateway the caller passes (the stand-in here), so honest
claims are verified and none disputed, the swarm climbs above the baseline, a liar's inflated
claims are disputed, and `swarm simulate` (its report page included) works on such a package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from node.llm import ModelGateway, StandinProvider
from node.problem import load_package
from node.sim import Faults, SimConfig, Simulation
from research_dag import Transcript
from sandbox import Runtime

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "skill_landing_copy"


async def test_a_simulated_swarm_verifies_honest_model_claims_and_disputes_a_liars(
    runtime: Runtime,
) -> None:
    problem = load_package(EXAMPLE)
    config = SimConfig(nodes=4, problems=(problem,), rounds=8, seed=0,
                       faults=Faults.parse("liars=0.25"))
    seen: dict[str, list[bool]] = {}
    transcripts: list[int] = []

    async def finish(sim: Simulation) -> None:  # while the nodes and their stores are open
        fakes = sim.fakes
        honest_replays: list[bool] = []
        fake_replays: list[bool] = []
        for node in (s.node for s in sim.plan if not s.liar and s.node is not None):
            for claim, matched in node.ledger.my_replays.items():
                (fake_replays if claim in fakes else honest_replays).append(matched)
        seen["honest"], seen["fake"] = honest_replays, fake_replays
        first = sim.plan[0].node
        assert first is not None
        transcripts.append(sum(isinstance(r, Transcript) for r in first.dag.records()))

    gateway = ModelGateway(StandinProvider(), cache_entries=0)
    report = await Simulation(config, runtime, finish=finish, gateway=gateway).run()
    swarm = report["swarm"]
    assert swarm["baseline"] is not None and swarm["best"] > swarm["baseline"]
    assert swarm["fake_claims"] > 0 and swarm["accepted_fake_claims"] == 0
    assert seen["honest"] and all(seen["honest"])  # verified, none disputed
    assert seen["fake"] and not any(seen["fake"])  # every replayed forgery disputed
    assert swarm["disputes"] == len(seen["fake"])
    assert transcripts[0] > 0  # node 0 holds its peers' transcripts


def test_swarm_simulate_on_a_skill_package_writes_its_report(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = _swarm("simulate", "--nodes", "3", "--problem", str(EXAMPLE), "--rounds", "3",
                    "--json", "--report", str(page))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["swarm"]["baseline"] == 0.4  # evaluated through the stand-in, not failed
    assert report["swarm"]["disputes"] == 0
    assert page.stat().st_size > 0
    missing = _swarm("simulate", "--problem", str(EXAMPLE), "--report",
                     str(tmp_path / "no" / "r.html"))
    assert missing.returncode == 2, missing.stderr  # refused before the run, not after it


def _swarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)
