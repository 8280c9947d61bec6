"""The LLM mutator end to end over recorded-looking HTTP replies, and the strict diff applier."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from recorded_llm import KEY, Script, message, no_sleep, status

from node.llm import (
    AnthropicClient,
    BudgetMeter,
    LLMConfig,
    OpenAICompatibleClient,
)
from node.mutators import (
    LLMMutator,
    MutationContext,
    MutationFailed,
    Mutator,
    make_diff,
)
from node.mutators.llm import normalise_kind, parse_changes
from playbook import PlannedChange
from research_dag import Change, Experiment, Metric, Outcome, Problem

STRATEGY = textwrap.dedent(
    '''\
    """Classify points by a weighted vote of simple features."""

    WEIGHTS = [0.5, 1.5, -0.25, 0.8]
    THRESHOLD = 0.5


    def features(point):
        x, y = point
        return [x, y, x * y, x - y]


    def solve(inputs):
        outputs = []
        for point in inputs:
            score = sum(w * f for w, f in zip(WEIGHTS, features(point)))
            outputs.append(1 if score > THRESHOLD else 0)
        return outputs
    '''
)
EVALUATE = "import json\nprint(json.dumps({'score': 0.5}))\n"
STATEMENT = "Label each 2-D point 1 when it lies inside the hidden region, else 0."

GOOD_DIFF = """\
--- a/strategy.py
+++ b/strategy.py
@@ -3,5 +3,5 @@
 WEIGHTS = [0.5, 1.5, -0.25, 0.8]
-THRESHOLD = 0.5
+THRESHOLD = 0.35


 def features(point):
"""
GOOD_REPLY = f"""\
<hypothesis>A lower threshold recovers positives missed near the boundary.</hypothesis>
<mutation_kind>Tune-Threshold</mutation_kind>
<description>THRESHOLD: 0.5 -> 0.35</description>
<changes>
perturb threshold strategy.py:THRESHOLD
</changes>
<diff>
{GOOD_DIFF}</diff>
"""


def problem() -> Problem:
    return Problem(
        name="inside_region",
        statement=STATEMENT,
        metric=Metric(name="accuracy", direction="maximize", target=0.95),
        mutable=["strategy.py"],
        checklist=["labels_are_binary"],
        files={"strategy.py": STRATEGY.encode(), "evaluate.py": EVALUATE.encode()},
    )


def context(**overrides: Any) -> MutationContext:
    task = problem()
    crashed = Experiment(
        problem=task.id,
        strategy={"strategy.py": STRATEGY.replace("x * y", "x / y")},
        mutation_kind="swap_operator",
        description="features: x * y -> x / y",
        outcome=Outcome(
            status="crash",
            stderr_tail='Traceback (most recent call last):\n  File "strategy.py", line 9, in '
            "features\nZeroDivisionError: float division by zero",
        ),
    )
    scored = Experiment(
        problem=task.id,
        strategy={"strategy.py": STRATEGY.replace("0.8]", "0.0]")},
        mutation_kind="prune_element",
        description="WEIGHTS[3]: 0.8 -> 0.0",
        hypothesis="The difference feature is noise.",
        outcome=Outcome(status="ok", score=0.71),
    )
    fields: dict[str, Any] = {
        "problem": task,
        "best_files": {"strategy.py": STRATEGY},
        "best_score": 0.78,
        "recent": (scored, crashed),
        "guidance": ("pattern prune_element: zeroing a weak weight helped on 3 problems",),
    }
    return MutationContext(**{**fields, **overrides})


@asynccontextmanager
async def mutator_for(
    script: Script, meter: BudgetMeter | None = None, **overrides: Any
) -> AsyncIterator[LLMMutator]:
    fields = {"max_retries": 2, "timeout_s": 5.0, **overrides}
    config = LLMConfig("anthropic", "claude-sonnet-5-5", KEY, **fields)
    async with AnthropicClient(config, httpx.MockTransport(script), sleep=no_sleep) as client:
        yield LLMMutator(client, meter or BudgetMeter(), max_tokens=2048)


def reply_with(diff: str, kind: str = "tune_threshold") -> str:
    return (
        "<hypothesis>It should help.</hypothesis>\n"
        f"<mutation_kind>{kind}</mutation_kind>\n"
        "<description>one edit</description>\n"
        f"<diff>\n{diff}</diff>\n"
    )


async def test_a_good_reply_becomes_a_proposal_with_the_patched_file() -> None:
    script = Script(message(GOOD_REPLY, tokens=(2100, 180)))
    meter = BudgetMeter()
    async with mutator_for(script, meter) as mutator:
        role: Mutator = mutator
        proposal = await role.propose(context())
    assert mutator.name == "anthropic"
    assert proposal.files == {
        "strategy.py": STRATEGY.replace("THRESHOLD = 0.5", "THRESHOLD = 0.35")
    }
    assert proposal.mutation_kind == "tune_threshold"
    assert proposal.description == "THRESHOLD: 0.5 -> 0.35"
    assert proposal.changes == (
        Change(operation="perturb", affordance="threshold", site="strategy.py:THRESHOLD"),
    )
    assert proposal.applied == () and proposal.hypothesis_id is None
    assert proposal.hypothesis.startswith("A lower threshold recovers")
    assert proposal.diff == make_diff({"strategy.py": STRATEGY}, proposal.files)
    assert proposal.diff.startswith("--- a/strategy.py\n+++ b/strategy.py\n@@ -1,7 +1,7 @@")
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (2100, 180)
    assert proposal.usage.cost_usd == pytest.approx((2100 * 2 + 180 * 10) / 1e6)
    assert meter.spent == proposal.usage
    assert json.loads(script.requests[0].content)["max_tokens"] == 2048


async def test_the_prompt_shows_problem_best_files_history_and_guidance() -> None:
    script = Script(message(GOOD_REPLY))
    async with mutator_for(script) as mutator:
        await mutator.propose(context())
        await mutator.propose(context(structural=True, recent=(), guidance=(), best_score=None))
    body = json.loads(script.requests[0].content)
    system, prompt = body["system"], script.prompt(0)
    assert "<!-- prompt:" not in system and "<!-- prompt:" not in prompt
    assert "<mutation_kind>" in system and "unified diff" in system and "<changes>" in system
    assert "${" not in system and "prune, perturb, scale" in system
    assert "weight_vector, feature_set, switch" in system
    assert STATEMENT in prompt
    assert STRATEGY.rstrip() in prompt
    assert "`accuracy`: maximize it (higher is better)." in prompt and "Target: 0.95." in prompt
    assert "Current best score: 0.78" in prompt
    assert "labels_are_binary" in prompt
    assert "ZeroDivisionError: float division by zero" in prompt
    assert "swap_operator: features: x * y -> x / y" in prompt
    assert "result: ok, score 0.71" in prompt
    # Newest last: the crash (recent[-1]) is listed after the scored attempt.
    assert prompt.index("prune_element") < prompt.index("swap_operator")
    assert "zeroing a weak weight helped" in prompt
    assert "structural" not in prompt
    second = script.prompt(1)
    assert "structural change" in second
    assert "Current best score: none yet" in second
    assert "None yet: this is the first attempt." in second
    assert "playbook" not in second


async def test_only_the_last_eight_attempts_are_shown() -> None:
    task = problem()
    attempts = tuple(
        Experiment(
            problem=task.id,
            strategy={"strategy.py": STRATEGY},
            mutation_kind=f"kind_{number}",
            outcome=Outcome(status="ok", score=number / 100),
        )
        for number in range(12)
    )
    script = Script(message(GOOD_REPLY))
    async with mutator_for(script) as mutator:
        await mutator.propose(context(recent=attempts))
    prompt = script.prompt()
    assert "kind_3:" not in prompt
    assert all(f"kind_{number}:" in prompt for number in range(4, 12))


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("I would lower the threshold to 0.35.", "no <diff> section"),
        (reply_with(""), "diff is empty"),
        (reply_with(GOOD_DIFF.replace(" WEIGHTS = [0.5,", " WEIGHTS = [0.9,")), "does not match"),
        (
            reply_with(
                "--- a/evaluate.py\n+++ b/evaluate.py\n@@ -2 +2 @@\n"
                "-print(json.dumps({'score': 0.5}))\n+print('{\"score\": 1.0}')\n"
            ),
            "'evaluate.py', which is not mutable",
        ),
        (
            reply_with(GOOD_DIFF.replace("+THRESHOLD = 0.35", "+THRESHOLD = (0.35")),
            "breaks strategy.py",
        ),
        (reply_with(GOOD_DIFF.replace("+THRESHOLD = 0.35", "+THRESHOLD = 0.5")), "changes nothing"),
        (
            reply_with("--- /dev/null\n+++ b/data/private/labels.csv\n@@ -0,0 +1 @@\n+1,1\n"),
            "not mutable",
        ),
    ],
    ids=[
        "no-tags",
        "empty-diff",
        "stale-context",
        "evaluator",
        "syntax-error",
        "no-op",
        "new-file",
    ],
)
async def test_malformed_replies_fail_retryably_and_still_count(reply: str, reason: str) -> None:
    meter = BudgetMeter()
    script = Script(message(reply, tokens=(2000, 90)))
    async with mutator_for(script, meter) as mutator:
        with pytest.raises(MutationFailed, match=reason) as caught:
            await mutator.propose(context())
    assert caught.value.retryable
    assert caught.value.usage.output_tokens == 90
    assert meter.spent.output_tokens == 90


async def test_a_reply_cut_at_max_tokens_says_so() -> None:
    script = Script(message(GOOD_REPLY[:200], stop_reason="max_tokens"))
    async with mutator_for(script) as mutator:
        with pytest.raises(MutationFailed, match="cut off at max_tokens"):
            await mutator.propose(context())


async def test_a_fenced_diff_is_accepted_as_a_fallback() -> None:
    reply = f"Lowering the threshold should help.\n\n```diff\n{GOOD_DIFF}```\n"
    async with mutator_for(Script(message(reply))) as mutator:
        proposal = await mutator.propose(context())
    assert "THRESHOLD = 0.35" in proposal.files["strategy.py"]
    assert proposal.mutation_kind == "llm_edit"
    assert proposal.description == "edit strategy.py"


async def test_a_fenced_diff_inside_the_diff_tag_and_wrong_line_numbers_still_apply() -> None:
    shifted = GOOD_DIFF.replace("@@ -3,5 +3,5 @@", "@@ -9,5 +9,5 @@")
    async with mutator_for(Script(message(reply_with(f"```diff\n{shifted}```\n")))) as mutator:
        proposal = await mutator.propose(context())
    assert "THRESHOLD = 0.35" in proposal.files["strategy.py"]


async def test_a_refusal_fails_retryably_with_its_cost() -> None:
    script = Script(message("I can't help with that request.", "refusal", (1900, 9)))
    async with mutator_for(script) as mutator:
        with pytest.raises(MutationFailed, match="refused") as caught:
            await mutator.propose(context())
    assert caught.value.retryable
    assert caught.value.usage.input_tokens == 1900


async def test_rate_limit_then_success_proposes_after_a_retry() -> None:
    script = Script(
        status(429, "rate_limit_error", "rate limited", retry_after="1"), message(GOOD_REPLY)
    )
    async with mutator_for(script) as mutator:
        proposal = await mutator.propose(context())
    assert len(script.requests) == 2
    assert proposal.mutation_kind == "tune_threshold"


async def test_persistent_rate_limit_is_a_retryable_failure() -> None:
    script = Script(status(429, "rate_limit_error", "rate limited", retry_after="1"))
    async with mutator_for(script, max_retries=2) as mutator:
        with pytest.raises(MutationFailed, match=r"429.*after 3 attempts") as caught:
            await mutator.propose(context())
    assert caught.value.retryable
    assert len(script.requests) == 3


async def test_overloaded_then_success() -> None:
    script = Script(status(529, "overloaded_error", "Overloaded"), message(GOOD_REPLY))
    async with mutator_for(script) as mutator:
        await mutator.propose(context())
    assert len(script.requests) == 2


async def test_an_auth_error_is_not_retryable_and_hides_the_key() -> None:
    script = Script(status(401, "authentication_error", "invalid x-api-key"))
    async with mutator_for(script) as mutator:
        with pytest.raises(MutationFailed) as caught:
            await mutator.propose(context())
    assert not caught.value.retryable
    assert KEY not in str(caught.value) and KEY not in caught.value.reason
    assert len(script.requests) == 1


async def test_a_hanging_endpoint_is_a_retryable_timeout() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    config = LLMConfig("anthropic", "claude-sonnet-5-5", KEY, timeout_s=0.1, max_retries=0)
    async with AnthropicClient(config, httpx.MockTransport(hang)) as client:
        with pytest.raises(MutationFailed, match="no reply within") as caught:
            await LLMMutator(client, BudgetMeter()).propose(context())
    assert caught.value.retryable


async def test_a_spent_budget_stops_further_calls() -> None:
    meter = BudgetMeter(LLMConfig("anthropic", "claude-sonnet-5-5", KEY, token_budget=3000))
    script = Script(
        message(GOOD_REPLY, tokens=(2100, 180)), message(GOOD_REPLY, tokens=(2100, 180))
    )
    async with mutator_for(script, meter) as mutator:
        await mutator.propose(context())  # 2280 of 3000 tokens
        await mutator.propose(context())  # 4560: over budget now
        for _ in range(2):
            with pytest.raises(MutationFailed, match="token budget spent") as caught:
                await mutator.propose(context())
            assert not caught.value.retryable
    assert len(script.requests) == 2


async def test_the_openai_compatible_client_drives_the_mutator_too() -> None:
    completion = httpx.Response(
        200,
        json={
            "id": "chatcmpl-8c4f1",
            "object": "chat.completion",
            "created": 1741570283,
            "model": "qwen2.5-coder:7b",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": GOOD_REPLY},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1800, "completion_tokens": 150, "total_tokens": 1950},
        },
    )
    script = Script(completion)
    config = LLMConfig("openai", "qwen2.5-coder:7b", base_url="http://127.0.0.1:11434/v1")
    async with OpenAICompatibleClient(config, httpx.MockTransport(script)) as client:
        mutator = LLMMutator(client, BudgetMeter())
        proposal = await mutator.propose(context())
    assert mutator.name == "openai"
    assert proposal.usage.input_tokens == 1800 and proposal.usage.cost_usd == 0.0
    assert STATEMENT in script.prompt()


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("Tune-Threshold", "tune_threshold"),
        ("pruneWeakWeight", "prune_weak_weight"),
        ("  swap operator (x*y → x/y) ", "swap_operator_x_y_x_y"),
        ("", "llm_edit"),
        ("!!!", "llm_edit"),
        ("a" * 80, "a" * 60),
    ],
)
def test_mutation_kinds_are_normalised(raw: str, kind: str) -> None:
    assert normalise_kind(raw) == kind


def test_changes_outside_the_vocabulary_become_other_with_the_word_kept_and_are_bounded() -> None:
    section = (
        "- prune:weight_vector at `strategy.py:WEIGHTS[3]`\n"
        "tweak knob strategy.py:X\n"
        "no-words\n"
        f"toggle switch {'S' * 500}\n" + "perturb constant strategy.py:A\n" * 40
    )
    changes = parse_changes(section)
    assert changes[0] == Change(
        operation="prune", affordance="weight_vector", site="strategy.py:WEIGHTS[3]"
    )
    assert changes[1] == Change(
        operation="other", affordance="other", site="strategy.py:X", note="tweak knob"
    )
    assert len(changes[2].site) == 200
    assert len(changes) == 8
    assert parse_changes("") == ()


async def test_a_reply_without_changes_is_not_described() -> None:
    described = "<changes>\nperturb threshold strategy.py:THRESHOLD\n</changes>\n"
    reply = GOOD_REPLY.replace(described, "")
    assert reply != GOOD_REPLY
    async with mutator_for(Script(message(reply))) as mutator:
        proposal = await mutator.propose(context())
    assert proposal.changes == () and proposal.files["strategy.py"] != STRATEGY


async def test_a_planned_change_is_asked_for_and_the_proposal_tests_its_hypothesis() -> None:
    plan = PlannedChange(
        "h" * 64, "perturb", "threshold", ("strategy.py:THRESHOLD",),
        "cutting at a lower threshold helped on two other problems",
    )
    patterns = {"perturb:threshold": ("p" * 64,), "prune:weight_vector": ("q" * 64,)}
    script = Script(message(GOOD_REPLY))
    async with mutator_for(script) as mutator:
        proposal = await mutator.propose(
            context(plan=plan, class_patterns=patterns, structural=True)
        )
    prompt = script.prompt()
    assert "## Planned change" in prompt and "helped on two other problems" in prompt
    assert "`perturb` on the `threshold` at one of the sites it names" in prompt
    assert "\nsite: strategy.py:THRESHOLD\n</data id=" in prompt  # a site is the plan's data
    assert "structural change" not in prompt  # the plan is the change to make
    assert proposal.hypothesis_id == "h" * 64
    assert proposal.applied == ("p" * 64,)
