"""Plain English → package: a model (recorded replies over an in-memory HTTP transport) writes a
package, the real sandbox validates it, failures go back for repair, and costs are counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from recorded_llm import KEY, Script, message, no_sleep, openai_completion, status

from node.llm import AnthropicClient, BudgetMeter, LLMConfig, OpenAICompatibleClient
from node.problem import load_package
from node.publish.poser import PoseConfig, Poser, PoseResult, ReplyError, parse_reply, write_package
from sandbox import Runtime

REPLIES = Path(__file__).parent / "fixtures" / "pose"
STATEMENT = "optimize a keyword spam filter for short text messages"
TOKENS = (5_200, 2_400)  # what a package reply with inline data costs


def reply(name: str, **options: Any) -> httpx.Response:
    return message((REPLIES / f"{name}.txt").read_text(), tokens=TOKENS, **options)


@asynccontextmanager
async def poser_for(
    runtime: Runtime,
    handler: Any,
    attempts: int = 4,
    meter: BudgetMeter | None = None,
    **overrides: Any,
) -> AsyncIterator[Poser]:
    fields = {"max_retries": 2, "timeout_s": 5.0, **overrides}
    config = LLMConfig("anthropic", "claude-sonnet-5-5", KEY, **fields)
    transport = httpx.MockTransport(handler)
    async with AnthropicClient(config, transport, sleep=no_sleep) as client:
        yield Poser(client, meter or BudgetMeter(config), runtime, PoseConfig(attempts=attempts))


async def pose(runtime: Runtime, script: Any, **options: Any) -> PoseResult:
    async with poser_for(runtime, script, **options) as poser:
        return await poser.pose(STATEMENT)


async def test_a_good_package_validates_first_time_and_is_written_for_review(
    runtime: Runtime, tmp_path: Path
) -> None:
    script = Script(reply("good"))
    result = await pose(runtime, script)
    assert result.ok and result.problem is not None and result.validation is not None
    assert [a.failures for a in result.attempts] == [[]]
    assert result.problem.name == "spam_keywords" and result.validation.baseline_score == 0.625
    assert result.validation.evaluations == 18  # twice, 2 shifted worlds, 11 probes,
    # the memoriser (the baseline's output, then that output as a literal), held-out
    assert (result.spent.input_tokens, result.spent.output_tokens) == TOKENS
    assert result.spent.cost_usd == pytest.approx((5_200 * 2.0 + 2_400 * 10.0) / 1e6)
    request = script.requests[0]
    assert STATEMENT in script.prompt(0) and b"Reply format" in request.content
    write_package(result.files, tmp_path / "out")
    assert load_package(tmp_path / "out").id == result.problem.id  # what was validated
    with pytest.raises(FileExistsError):
        write_package(result.files, tmp_path / "out")


async def test_a_nondeterministic_evaluator_is_sent_back_and_repaired(runtime: Runtime) -> None:
    script = Script(reply("nondeterministic"), reply("repair_evaluator"))
    result = await pose(runtime, script)
    assert result.ok and len(result.attempts) == 2
    first, second = result.attempts
    assert [f.split(":")[0] for f in first.failures] == ["world"]
    assert "seed every random generator" in first.failures[0]
    assert second.changed == ["evaluate.py"] and second.failures == []  # the rest was kept
    repair = script.prompt(1)
    assert "attempt 1 of 4" in repair and "unseeded randomness" in repair
    assert "import random" not in result.files["evaluate.py"].decode()
    assert result.spent.input_tokens == 2 * TOKENS[0]


async def test_a_package_that_never_validates_is_refused_with_a_clear_report(
    runtime: Runtime,
) -> None:
    script = Script(reply("constant_evaluator"), reply("constant_again"))
    result = await pose(runtime, script, attempts=3)
    assert not result.ok and len(script.requests) == 3 and len(result.attempts) == 3
    report = result.report()
    assert report.count("discriminates: no degraded strategy scores worse") == 3
    assert report.count("held_out: the score does not change when data/private is emptied") == 3
    assert "attempt 3:" in report and result.stopped == ""


async def test_malformed_replies_are_fed_back_until_a_package_arrives(runtime: Runtime) -> None:
    good = (REPLIES / "good.txt").read_text()
    script = Script(
        message("Sure! Here is a plan for your spam filter: first, collect data...", tokens=TOKENS),
        message('<file path="../evil.py">\nimport os\n</file>', tokens=TOKENS),
        message(good[: len(good) // 2], stop_reason="max_tokens", tokens=TOKENS),
        message('<file path="strategy.py">\ndef solve(d):\n    return []\n</file>', tokens=TOKENS),
        reply("good"),
    )
    result = await pose(runtime, script, attempts=5)
    assert result.ok and len(result.attempts) == 5
    failures = [attempt.failures for attempt in result.attempts]
    assert "contains no <file" in failures[0][0]
    assert "'../evil.py' is not a package-relative path" in failures[1][0]
    assert "cut off at the 16000-token limit" in failures[2][0]
    assert any("problem.toml" in f for f in failures[3]) and failures[3][0].startswith("load: ")
    assert failures[4] == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('<file path="/etc/passwd">x</file>', "not a package-relative path"),
        ('<file path=".hidden.py">x</file>', "not a package-relative path"),
        ('<file path="data/other/x.json">x</file>', "is not allowed"),
        ('<file path="pkg/mod.py">x</file>', "is not allowed"),
        ('<file path="data\\public\\x.json">x</file>', "not a package-relative path"),
        ("no blocks at all", "contains no <file"),
    ],
)
def test_reply_paths_outside_the_package_are_refused(text: str, why: str) -> None:
    with pytest.raises(ReplyError, match=why):
        parse_reply(text)


def test_replies_may_fence_code_and_delete_files() -> None:
    files, deleted = parse_reply(
        'Here you go.\n<file path="strategy.py">\n```python\nX = 1\n```\n</file>\n'
        '<delete path="helper.py"/>\n<file path="data/public/a.json">\n[1]\n</file>'
    )
    assert files == {"strategy.py": b"X = 1\n", "data/public/a.json": b"[1]\n"}
    assert deleted == ["helper.py"]


async def test_provider_overload_is_retried_and_the_pose_succeeds(runtime: Runtime) -> None:
    overloaded = status(529, "overloaded_error", "Overloaded")
    script = Script(overloaded, overloaded, reply("good"))
    result = await pose(runtime, script)
    assert result.ok and len(script.requests) == 3 and len(result.attempts) == 1


async def test_a_rejected_key_stops_the_pose_at_once(runtime: Runtime) -> None:
    script = Script(status(401, "authentication_error", "invalid x-api-key"))
    result = await pose(runtime, script)
    assert not result.ok and result.attempts == [] and len(script.requests) == 1
    assert "HTTP 401" in result.stopped and "invalid x-api-key" in result.stopped
    assert KEY not in result.report()


async def test_a_provider_that_never_answers_times_out(runtime: Runtime) -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    with trio.fail_after(30):
        result = await pose(runtime, silent, timeout_s=0.2, max_retries=1)
    assert not result.ok and result.attempts == []
    assert "no reply within 0.2 s" in result.stopped and "after 2 tries" in result.stopped


async def test_the_token_budget_caps_the_repairs(runtime: Runtime) -> None:
    config = LLMConfig("anthropic", "claude-sonnet-5-5", KEY, token_budget=7_000)
    meter = BudgetMeter(config)
    script = Script(reply("nondeterministic"), reply("repair_evaluator"))
    result = await pose(runtime, script, meter=meter)
    assert not result.ok and len(script.requests) == 1  # the repair was never asked for
    assert result.stopped == "token budget spent: 7600 of 7000 tokens"
    assert meter.spent.input_tokens + meter.spent.output_tokens == sum(TOKENS)


async def test_an_openai_compatible_local_model_can_pose_too(runtime: Runtime) -> None:
    script = Script(openai_completion((REPLIES / "good.txt").read_text(), tokens=TOKENS))
    config = LLMConfig("openai", "qwen2.5-coder:7b", base_url="http://127.0.0.1:11434/v1")
    async with OpenAICompatibleClient(config, httpx.MockTransport(script)) as client:
        result = await Poser(client, BudgetMeter(config), runtime).pose(STATEMENT)
    assert result.ok and result.spent.cost_usd == 0.0  # a local model costs nothing
    assert str(script.requests[0].url) == "http://127.0.0.1:11434/v1/chat/completions"
