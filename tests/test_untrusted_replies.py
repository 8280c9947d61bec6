"""A model's reply, a provider's usage and headers, the dashboard's requests and the CLI's inputs
from elsewhere, fed arbitrary and adversarial text: only the documented error comes out (or a
failed proposal, a 4xx, exit code 2), and no parser costs more than linear time in what a
stranger sends. Wire, records, manifests and sandbox outputs: tests/test_untrusted_inputs.py."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trio
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from recorded_llm import no_sleep
from starlette.testclient import TestClient

from node.cli.candidates import _files
from node.cli.dag_show import resolve
from node.cli.dag_view import open_view
from node.llm import (
    AnthropicClient,
    ChatMessage,
    ChatReply,
    LLMConfig,
    LLMError,
    OpenAICompatibleClient,
    Usage,
)
from node.llm.chat import MAX_RETRY_AFTER_S, closed_blocks, status_error
from node.mutators import MutationContext, MutationFailed
from node.mutators.llm import _last_fenced_diff, _last_tag, parse_changes, parse_reply
from node.mutators.patch import PatchError, apply_patch
from node.problem import load_package
from node.publish.poser import _FILE_CLOSING, _FILE_OPENING, ReplyError
from node.publish.poser import parse_reply as parse_pose_reply
from node.store import RecordStore
from node.untrusted_text import markup
from node.web.app import dashboard_app
from node.web.state import DashboardSource
from research_dag import Experiment, Outcome, Problem

PROBE = Path(__file__).parent / "fixtures" / "probe"
STRATEGY = "def solve(inputs):\n    return {'x': 1}\n"
HOSTILE = "\x1b]0;t\x07\u202e<script>\\\\[b]\ud800"


# -- A provider's reply: a checked reply or an LLMError --------------------------------------

COUNTS = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([10**400, -5, 2**63]),
                   st.floats(), st.text(max_size=3), st.none(), st.booleans())
TEXTS = st.one_of(st.text(max_size=20), st.sampled_from(["a\ud800", "\udfff", "ok"]))


def _ask(provider: str, body: bytes, headers: dict[str, str] | None = None) -> ChatReply | str:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers=headers or {
            "content-type": "application/json"})

    transport = httpx.MockTransport(handler)
    client: AnthropicClient | OpenAICompatibleClient
    if provider == "anthropic":
        client = AnthropicClient(LLMConfig("anthropic", "claude-sonnet-5-5", "k", max_retries=0),
                                 transport, no_sleep)
    else:
        client = OpenAICompatibleClient(LLMConfig("openai", "m", "", "http://127.0.0.1:9/v1",
                                                  max_retries=0), transport, no_sleep)

    async def complete() -> ChatReply | str:
        async with client:
            try:
                return await client.complete("s", [ChatMessage("user", "u")], 64)
            except LLMError as error:
                return type(error).__name__

    return trio.run(complete)


def _body(provider: str, text: Any, first: Any, second: Any) -> bytes:
    if provider == "anthropic":
        document = {"id": "m", "type": "message", "role": "assistant", "model": "c",
                    "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                    "usage": {"input_tokens": first, "output_tokens": 7,
                              "cache_read_input_tokens": second}}
    else:
        document = {"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": first, "completion_tokens": second}}
    return json.dumps(document, allow_nan=True).encode()


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["anthropic", "openai"]), TEXTS, COUNTS, COUNTS)
def test_any_reply_a_provider_sends_is_a_usable_reply_or_an_llm_error(
    provider: str, text: Any, first: Any, second: Any
) -> None:
    """Usage `Infinity` raised OverflowError out of the Anthropic client and 10**400 out of
    the OpenAI-compatible one; -5 tokens refunded the mutator's and the poser's money budget;
    a lone surrogate reached `swarm pose`, whose package file could not be written."""
    reply = _ask(provider, _body(provider, text, first, second))
    if isinstance(reply, str):
        return
    usage: Usage = reply.usage
    assert all(type(n) is int and 0 <= n < 2**63 for n in (usage.input_tokens,
                                                          usage.output_tokens))
    assert math.isfinite(usage.cost_usd) and usage.cost_usd >= 0
    reply.text.encode("utf-8")


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=12), st.sampled_from(["nan", "NaN", "-nan", "inf", "1e999"])),
       st.sampled_from(["retry-after", "retry-after-ms"]))
def test_any_retry_after_is_a_finite_wait_or_none(value: str, name: str) -> None:
    """`Retry-After: nan` made the client sleep NaN seconds: trio raised ValueError out of the
    call's retries (the mutator's task, not the call, failed)."""
    error = status_error(429, {name: value}, "slow down")
    wait = getattr(error, "retry_after", None)
    assert wait is None or 0 <= wait <= MAX_RETRY_AFTER_S


# -- The LLM mutator's reply: a proposal or MutationFailed, in linear time -------------------

REPLY_PIECES = st.sampled_from([
    "<diff>", "</diff>", "```diff\n", "```patch x\n", "```", "\n", "--- a/strategy.py\n",
    "+++ b/strategy.py\n", "@@ -1 +1 @@\n", "@@ -" + "9" * 4_400 + " +1 @@\n", "@@ -\u0661 +1 @@\n",
    "-def solve(inputs):\n", "+def solve(inputs):  # \ud800\n", " ", "x", "<changes>",
    "</changes>", "prune weight_vector a.py:W\n", "-" * 50, "<description>", "</description>",
    "\ud800", "\\", "<hypothesis>",
])


@pytest.fixture(scope="module")
def probe_context() -> MutationContext:
    problem = load_package(PROBE)
    return MutationContext(problem=problem, best_files={"strategy.py": STRATEGY},
                           best_score=1.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(REPLY_PIECES, max_size=30).map("".join))
def test_any_reply_is_a_proposal_or_a_failed_one(probe_context: MutationContext,
                                                  text: str) -> None:
    """A hunk header of 4,400 digits raised ValueError (int's digit limit; not a PatchError)
    out of the mutator."""
    try:
        proposal = parse_reply(ChatReply(text, Usage(), "end_turn"), probe_context)
    except MutationFailed:
        return
    assert set(proposal.files) == {"strategy.py"}


@settings(max_examples=300, deadline=None)
@given(st.lists(REPLY_PIECES, max_size=30).map("".join))
def test_the_linear_readers_find_what_the_patterns_found(text: str) -> None:
    """The tag and fence readers, rewritten in linear time, against the patterns they replace
    (those were quadratic: a reply of 10,000 unclosed `<diff>` took 7.5 s, of 40,000 96 s)."""
    for tag in ("diff", "changes", "description"):
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL)
        assert _last_tag(text, tag) == (found[-1] if found else None)
    fenced = re.findall(r"```(?:diff|patch|udiff)[^\n]*\n(.*?)```", text, flags=re.DOTALL)
    assert _last_fenced_diff(text) == (fenced[-1] if fenced else None)


def test_replies_built_to_be_quadratic_are_read_at_once(probe_context: MutationContext) -> None:
    """Each of these took seconds to minutes before (a repetition loop of a model gives such
    replies): unclosed tags, unclosed fences, fences without a newline, a `<changes>` line of
    16,000 dashes (13 s), a hunk header past int's digit limit."""
    for text in ("<diff>" * 40_000, "```diff" * 40_000, "```diff\n" * 40_000,
                 "<changes>" + "-" * 16_000 + "</changes><diff>@@ -1 +1 @@\n-x\n</diff>",
                 "<diff>@@ -" + "1" * 5_000 + ",1 +1 @@\n-x\n+y\n</diff>"):
        with pytest.raises(MutationFailed):
            parse_reply(ChatReply(text, Usage(), "end_turn"), probe_context)
    assert len(parse_changes("- " * 8_000 + "\n" + "a" + " " * 16_000 + "!")) <= 1


@settings(max_examples=200, deadline=None)
@given(st.lists(REPLY_PIECES, max_size=20).map("".join))
def test_any_diff_applies_or_is_a_patch_error(diff: str) -> None:
    try:
        files = apply_patch(diff, {"strategy.py": STRATEGY}, ["strategy.py"])
    except PatchError:
        return
    assert set(files) == {"strategy.py"}


# -- `swarm pose`'s reply: files or a ReplyError, in linear time ------------------------------

POSE_PIECES = st.sampled_from([
    '<file path="strategy.py">', '<file path="data/private/a.csv">\n', "</file>",
    '<file path="../x">', '<delete path="evaluate.py"/>', "```python\n", "```", "\n", "x",
    "\ud800", '<file  path = "problem.toml" >', '"', "<file path=", "é",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(POSE_PIECES, max_size=25).map("".join))
def test_any_pose_reply_is_files_or_a_reply_error(text: str) -> None:
    """A file block holding a lone surrogate raised UnicodeEncodeError out of `swarm pose`;
    the block reader is linear (10,000 unclosed blocks, 190 KB, took 48 s)."""
    pattern = r'<file\s+path\s*=\s*"(?P<path>[^"\n]{1,300})"\s*>\n?(?P<body>.*?)</file>'
    blocks = [(m["path"], m["body"]) for m in re.finditer(pattern, text, re.DOTALL)]
    found = closed_blocks(text, _FILE_OPENING, _FILE_CLOSING)
    assert [(opening["path"], body) for opening, body in found] == blocks
    try:
        files, _ = parse_pose_reply(text)
    except ReplyError:
        return
    assert all(isinstance(content, bytes) for content in files.values())


def test_a_pose_reply_of_unclosed_blocks_is_read_at_once() -> None:
    with pytest.raises(ReplyError):
        parse_pose_reply('<file path="a.py">\n' * 20_000)
    with pytest.raises(ReplyError, match="Unicode"):
        parse_pose_reply('<file path="a.py">x = "\ud800"</file>')


# -- The one sanitiser: the same text as before, in linear time --------------------------------

_OLD_RUN = re.compile(r"(\\*)(\[|\Z)")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="\\[]ab/ \n\x1b\u202e", max_size=30))
def test_markup_escapes_runs_as_before_in_linear_time(text: str) -> None:
    """A run of backslashes that no bracket follows was tried again from each of its
    backslashes (8,000 took 1.9 s; a peer's description, or a candidate file's key in an error
    line, is shown so)."""
    from node import untrusted_text

    before = _OLD_RUN.sub(untrusted_text._escape_run, untrusted_text.visible(text))
    assert markup(text) == before


def test_a_long_run_of_backslashes_is_escaped_at_once() -> None:
    assert markup("\\" * 256_000 + "x") == "\\" * 256_000 + "x"


# -- The dashboard: any path or query is JSON or a 4xx -----------------------------------------

@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the probe problem, its baseline and a hostile claim."""
    data = tmp_path_factory.mktemp("untrusted-web")
    problem = load_package(PROBE)
    base = Experiment(problem=problem.id, strategy={"strategy.py": STRATEGY}, created_ms=1,
                      outcome=Outcome(status="ok", score=1.0))
    hostile = Experiment(problem=problem.id, parent=base.id, strategy={"strategy.py": HOSTILE[:9]},
                         description=HOSTILE[:-1], created_ms=2**63 - 1,
                         outcome=Outcome(status="ok", score=-1e308, details={"d": 2**64 - 1}))
    with RecordStore.open(data / "records.sqlite") as store:
        for record in (problem, base, hostile):
            store.add(record)
    return data


@pytest.fixture(scope="module")
def dashboard(held: Path) -> Iterator[tuple[TestClient, str]]:
    with RecordStore.open(held / "records.sqlite") as store:
        app = dashboard_app(DashboardSource(store=lambda: store), allowed_hosts=["testserver"])
        with TestClient(app) as client:
            problem = client.get("/api/overview").json()["problems"][0]["id"]
            yield client, problem


QUERY = st.one_of(st.text(max_size=12), st.sampled_from(
    ["1" * 5_000, "-1", "١٢", "%ED%A0%80", "nan", "1e999", "0x10", "", "\x00"]))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["", "/points", "/rates", "/changelog", "/graph"]),
       st.one_of(st.just(""), st.text(max_size=70), st.sampled_from(["0" * 64, "g" * 64])),
       st.dictionaries(st.sampled_from(["after", "offset", "limit", "status", "author", "q"]),
                       QUERY, max_size=4))
def test_any_dashboard_request_is_json_or_a_4xx(
    dashboard: tuple[TestClient, str], route: str, problem: str, query: dict[str, str]
) -> None:
    client, known = dashboard
    for target in (known, quote(problem, safe="")):
        response = client.get(f"/api/problem/{target}{route}", params=query)
        assert response.status_code in (200, 404)  # 404: no such problem, or no such route
        if response.status_code == 200:
            json.loads(response.content)
    response = client.get(f"/api/record/{quote(problem, safe='')}")
    assert response.status_code in (200, 404)


def test_raw_escapes_in_a_query_are_read_as_text(dashboard: tuple[TestClient, str]) -> None:
    client, known = dashboard
    response = client.get(f"/api/problem/{known}/changelog?q=%ED%A0%80%FF&offset=%FF"
                          "&limit=1e999&author=%00&status=%E2%80%AE")
    assert response.status_code == 200 and json.loads(response.content)["rows"] == []


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_any_host_header_is_answered_or_refused(dashboard: tuple[TestClient, str],
                                                host: str) -> None:
    try:
        response = dashboard[0].get("/api/version", headers={"host": host})
    except (UnicodeEncodeError, httpx.InvalidURL):
        return  # the client cannot even send it
    assert response.status_code in (200, 400)


# -- The CLI: a candidate line and an id prefix from elsewhere ---------------------------------

@pytest.fixture(scope="module")
def probe_problem_record() -> Problem:
    return load_package(PROBE)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXTS),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.one_of(TEXTS, st.just("strategy.py")), inner,
                                      max_size=3), max_leaves=8))
def test_any_candidate_line_is_files_or_exit_2(probe_problem_record: Problem,
                                               value: Any) -> None:
    for raw in (json.dumps(value, allow_nan=True).encode(), b"\xff\xfe", b"[" * 100_000):
        try:
            files = _files(probe_problem_record, raw, "stdin:1")
        except typer.Exit as error:
            assert error.exit_code == 2
            continue
        assert set(files) <= {"strategy.py"}
        assert all(isinstance(source, str) for source in files.values())


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=70), st.text(alphabet="0123456789abcdefABCDEF ", max_size=70)))
def test_any_id_prefix_is_a_record_or_exit_1_or_2(held: Path, query: str) -> None:
    with open_view(held) as view:
        try:
            found = resolve(view, query)
        except typer.Exit as error:
            assert error.exit_code in (1, 2)
            return
    assert found.startswith(query.strip().lower())
