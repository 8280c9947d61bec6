"""Offline text operators (issue 13): units of a SKILL.md, each operator's described change,
the phrase bank, hostile text, and an offline loop with the noise gate on a model-free text
package in the real sandbox."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from node.loop import LoopConfig, ResearchLoop
from node.mutators import MutationContext, MutationFailed, OfflineMutator
from node.mutators.text import TextOperators, phrase_bank, text_units
from node.problem import load_package
from node.store import RecordStore
from research_dag import Metric, Problem
from sandbox import Evaluator, Runtime

SKILL = """# Skill

You write copy. Be brief.

- Name the product.
- SHOUT a lot.
"""
RUNNER = '''
import json

def run(public_dir):
    context = json.load(open("/runner/swarm_text.json"))
    return open(context["strategy_dir"] + "/SKILL.md", encoding="utf-8").read()
'''
EVALUATOR = '''
CHECKS = [lambda t: "State the price." in t, lambda t: "End with an offer." in t,
          lambda t: "SHOUT" not in t]

def evaluate(output, public_dir, private_dir):
    verdicts = "".join("1" if check(output) else "0" for check in CHECKS)
    details = {f"case:{i:02d}": verdicts for i in range(10)}
    return {"score": verdicts.count("1") / len(CHECKS), "details": details}
'''
MANIFEST = '''
name = "text_loop"
statement = "a text strategy scored without a model"
mutable = ["SKILL.md"]
runner = "run.py"
entry = "run"
[metric]
name = "pass_rate"
direction = "maximize"
target = 0.95
[model]
max_calls = 1
'''
PHRASES = "# bank\n- State the price.\n- End with an offer.\n- Use emoji.\n"


def _package(tmp_path: Path) -> Problem:
    root = tmp_path / "package"
    (root / "data" / "public").mkdir(parents=True)
    (root / "data" / "private").mkdir(parents=True)
    for name, text in {"problem.toml": MANIFEST, "SKILL.md": SKILL, "run.py": RUNNER,
                       "evaluate.py": EVALUATOR, "data/public/phrases.txt": PHRASES,
                       "data/private/none.txt": "-"}.items():
        (root / name).write_text(text)
    return load_package(root)


def _context(problem: Problem, text: str, seed: int = 0) -> MutationContext:
    return MutationContext(problem=problem, best_files={"SKILL.md": text}, best_score=None,
                           rng=random.Random(seed))


def test_units_are_bullets_and_sentences_never_headings() -> None:
    text = "# Title\n\nOne. Two! Three?\n- a bullet. Still one.\n```\n- code\n```\n1. numbered\n"
    lines = text.split("\n")
    said = [lines[u.line][u.start:u.end] for u in text_units(text)]
    assert said == ["One.", "Two!", "Three?", "- a bullet. Still one.", "1. numbered"]


def test_the_phrase_bank_skips_comments_and_markers() -> None:
    assert phrase_bank({"data/public/phrases.txt": PHRASES.encode()}) == [
        "State the price.", "End with an offer.", "Use emoji."]
    assert phrase_bank({"phrases.txt": ("x" * 400 + "\nok\n").encode()}) == ["ok"]
    assert phrase_bank({}) == []


def test_every_operator_makes_one_described_change_and_never_repeats(tmp_path: Path) -> None:
    problem = _package(tmp_path)
    operators = TextOperators()
    seen: set[str] = set()
    kinds: set[str] = set()
    for seed in range(60):
        try:
            proposal = operators.propose(_context(problem, SKILL, seed))
        except MutationFailed:
            break
        text = proposal.files["SKILL.md"]
        assert text != SKILL and text not in seen
        seen.add(text)
        kinds.add(proposal.mutation_kind)
        (change,) = proposal.changes
        assert change.affordance == "text_section" and change.site.startswith("SKILL.md:unit[")
        assert proposal.diff.startswith("--- a/SKILL.md")
        assert "# Skill" in text  # headings stay
    assert kinds == {"insert_phrase", "delete_sentence", "move_sentence", "duplicate_sentence"}


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=2000), st.integers(0, 10_000))
def test_hostile_text_gives_a_proposal_or_mutation_failed(text: str, seed: int) -> None:
    problem = Problem(name="t", statement="t", metric=Metric(name="m", direction="maximize"),
                      mutable=["SKILL.md"], runner="run.py", entry="run",
                      files={"SKILL.md": b"x", "run.py": b"def run(d):\n  return 1\n",
                             "evaluate.py": b"", "phrases.txt": b"- Be kind.\n"})
    try:
        proposal = TextOperators().propose(_context(problem, text, seed))
    except MutationFailed:
        return
    assert proposal.files["SKILL.md"] != text


async def test_the_offline_loop_climbs_a_text_strategy_through_the_gate(
    runtime: Runtime, tmp_path: Path
) -> None:
    problem = _package(tmp_path)
    with Evaluator(runtime, problem) as evaluator, \
            RecordStore.open(tmp_path / "r.sqlite") as store:
        summary = await ResearchLoop(problem, evaluator.evaluate, OfflineMutator(), store,
                                     LoopConfig(iterations=60, seed=0)).run()
    assert summary.baseline_score is not None and summary.baseline_score < 0.4
    assert summary.stop_reason == "target_reached" and summary.best_score == 1.0
    kept = [step for step in summary.history if step.status == "keep"]
    assert kept and all("10 up 0 down" in step.gate and ": kept" in step.gate for step in kept)
    within = [step for step in summary.history if step.status == "discard"]
    assert all(step.gate.endswith(("within noise", "worse")) for step in within if step.gate)
