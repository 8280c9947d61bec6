"""No proposal can stop the loop: whatever a mutator returns (more changes than a record lists,
a description past its bound, a bad pattern id), it becomes a record or a failed proposal,
checked before it costs an evaluation. And a model-backed run stops when its model budget is
spent, instead of recording a timeout for every attempt left."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.loop import LoopConfig, ResearchLoop
from node.mutators import MutationContext, Proposal
from node.mutators.patch import make_diff
from node.store import RecordStore
from research_dag import Change, Experiment, Outcome, Problem

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

_changes = st.lists(
    st.builds(Change, operation=st.just("perturb"), affordance=st.just("constant"),
              site=st.text(max_size=20)),
    max_size=14,
)
_proposals = st.fixed_dictionaries({
    "changes": _changes,
    "description": st.text(max_size=5_000),
    "hypothesis": st.text(max_size=5_000),
    "mutation_kind": st.text(max_size=200),
    "applied": st.lists(st.text(alphabet="0123456789abcdefg", max_size=70), max_size=20),
})


class _Hostile:
    """Proposes SCALE = n (n = 2, 3, ...) with the drawn fields."""

    name = "hostile"

    def __init__(self, fields: list[Mapping[str, object]]) -> None:
        self.fields = fields
        self.calls = 0

    async def propose(self, context: MutationContext) -> Proposal:
        await trio.lowlevel.checkpoint()
        drawn = self.fields[self.calls % len(self.fields)]
        self.calls += 1
        files = {"strategy.py": f"SCALE = {self.calls + 1}\n"}
        return Proposal(
            files=files, diff=make_diff(context.best_files, files),
            mutation_kind=str(drawn["mutation_kind"]), description=str(drawn["description"]),
            hypothesis=str(drawn["hypothesis"]),
            changes=tuple(drawn["changes"]),  # type: ignore[arg-type]
            applied=tuple(drawn["applied"]),  # type: ignore[arg-type]
        )


def _score(files: Mapping[str, str]) -> Outcome:
    found = re.search(r"^SCALE = ([0-9.]+)$", files["strategy.py"], re.MULTILINE)
    return Outcome(status="ok", score=float(found.group(1)) if found else 0.0,
                   strategy_fuel=1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_proposals, min_size=1, max_size=4))
def test_no_proposal_stops_the_loop(probe_problem: Problem, tmp_path_factory: object,
                                    fields: list[Mapping[str, object]]) -> None:
    path = tmp_path_factory.mktemp("bounds") / "r.sqlite"  # type: ignore[attr-defined]
    evaluated: list[Mapping[str, str]] = []

    def evaluate(files: Mapping[str, str]) -> Outcome:
        evaluated.append(files)
        return _score(files)

    async def main() -> None:
        with RecordStore.open(path) as store:
            loop = ResearchLoop(probe_problem, evaluate, _Hostile(fields), store,
                                LoopConfig(iterations=6, seed=0, families=(),
                                           max_mutator_failures=100, stop_at_target=False))
            summary = await loop.run()
            recorded = [r for r in store.iter_records(kind="experiment")
                        if isinstance(r, Experiment)]
            # Every attempt is a record or a failed proposal; a failed one cost no evaluation.
            assert summary.iterations + summary.mutator_failures == 6
            assert len(recorded) == summary.iterations + 1 == len(evaluated)

    trio.run(main)


def test_an_unrecordable_proposal_is_a_failed_proposal_with_its_reason(
    probe_problem: Problem, tmp_path: Path
) -> None:
    nine = [Change(operation="perturb", affordance="constant")] * 9
    many: list[Mapping[str, object]] = [{"changes": nine,
             "description": "", "hypothesis": "", "mutation_kind": "x", "applied": []}]
    reasons: list[str] = []

    async def main() -> None:
        with RecordStore.open(tmp_path / "r.sqlite") as store:
            loop = ResearchLoop(probe_problem, _score, _Hostile(many), store,
                                LoopConfig(iterations=3, seed=0, families=()),
                                on_mutator_failure=reasons.append)
            summary = await loop.run()
            assert (summary.iterations, summary.mutator_failures) == (0, 3)

    trio.run(main)
    assert reasons and "cannot be recorded: changes" in reasons[0]


def test_a_run_stops_when_its_model_budget_is_spent(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", "run",
         str(EXAMPLES / "skill_landing_copy"), "--iterations", "40", "--no-stop",
         "--max-tokens", "20000", "--json",
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["stop_reason"] == "model_budget"
    assert 1 <= summary["iterations"] < 40
    # No attempt after the budget ran out was spent on an evaluation that could only time out.
    statuses = [step["status"] for step in summary.get("history", [])]
    assert statuses.count("timeout") <= 1
