"""The LLM mutator on a text strategy (issue 13): the text prompts show which checks failed on
which case with the outputs, and a reply's one diff to SKILL.md becomes a Proposal (recorded
replies over httpx.MockTransport; no real API is reachable here)."""

from __future__ import annotations

from pathlib import Path

import httpx
from recorded_llm import KEY, Script, message, no_sleep

from node.llm import AnthropicClient, BudgetMeter, LLMConfig
from node.mutators import LLMMutator, MutationContext, MutationFailed, Proposal
from node.problem import load_package
from research_dag import Experiment, Outcome

EXAMPLE = Path(__file__).parent.parent / "examples" / "skill_landing_copy"
REPLY = """<hypothesis>has_call_to_action fails on every case because the skill never asks for one;
asking for it should fix that check.</hypothesis>
<mutation_kind>add_instruction</mutation_kind>
<description>ask for a call to action</description>
<changes>
insert text_section SKILL.md:rules
</changes>
<diff>
--- a/SKILL.md
+++ b/SKILL.md
@@ -8,2 +8,3 @@
 - Make it exciting: use capitals and exclamation marks for emphasis!
 - Write in a warm, friendly voice.
+- End with a call to action.
</diff>
"""


def _context() -> MutationContext:
    problem = load_package(EXAMPLE)
    skill = problem.files["SKILL.md"].decode()
    outcome = Outcome(status="ok", score=0.4, details={
        "case:01": "11000", "case:02": "11000", "case:03": "11111",
        "out:01": "Amazing news! LUMO DESK LAMP!!! Only $49.", "has_call_to_action": 0.0})
    best = Experiment(problem=problem.id, strategy={"SKILL.md": skill}, outcome=outcome)
    return MutationContext(problem=problem, best_files={"SKILL.md": skill}, best_score=0.4,
                           recent=(best,))


async def _propose(script: Script) -> tuple[MutationContext, Proposal | MutationFailed]:
    config = LLMConfig("anthropic", "claude-sonnet-5-5", KEY, max_retries=1, timeout_s=5.0)
    context = _context()
    async with AnthropicClient(config, httpx.MockTransport(script), sleep=no_sleep) as client:
        mutator = LLMMutator(client, BudgetMeter())
        try:
            return context, await mutator.propose(context)
        except MutationFailed as failure:
            return context, failure


async def test_the_text_prompt_shows_failing_checks_per_case_with_outputs() -> None:
    script = Script(message(REPLY))
    _, proposal = await _propose(script)
    prompt = script.prompt()
    assert "What the current best skill gets wrong" in prompt
    assert "has_call_to_action on 2 of 3 cases" in prompt
    assert "- case 01: fails has_call_to_action, no_shouting, right_length" in prompt
    assert "<output>Amazing news! LUMO DESK LAMP!!! Only $49.</output>" in prompt
    assert "case 03" not in prompt  # it passes every check
    system = script.requests[0].content.decode()
    assert "identify what failed and why, then make one change" in system
    assert isinstance(proposal, Proposal)
    assert proposal.files["SKILL.md"].endswith("- End with a call to action.\n")
    assert proposal.mutation_kind == "add_instruction"
    (change,) = proposal.changes
    assert (change.operation, change.affordance) == ("insert", "text_section")


async def test_a_reply_without_a_diff_is_a_recorded_failure() -> None:
    _, failure = await _propose(Script(message("<hypothesis>no idea</hypothesis>")))
    assert isinstance(failure, MutationFailed) and "no <diff>" in failure.reason


def test_the_best_outcome_is_shown_when_the_best_is_no_longer_recent() -> None:
    from dataclasses import replace

    from node.mutators.text_prompt import render_failures

    context = _context()
    best = context.recent[0].outcome
    assert "case 01: fails" in render_failures(replace(context, recent=(), best_outcome=best))
    assert render_failures(replace(context, recent=())).startswith("Not known")
