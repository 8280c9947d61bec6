"""`swarm pose "plain English"` as a user runs it: a separate process talking HTTP to a local
stand-in for the Anthropic API (127.0.0.1, recorded replies), the real sandbox, real files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.cli.pose import _dir_name
from node.problem import load_package

REPLIES = Path(__file__).parent / "fixtures" / "pose"
STATEMENT = "optimize a keyword spam filter for short text messages"


class RecordedAPI:
    """Answers POST /v1/messages with recorded replies, in order, the last one repeated."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.bodies: list[bytes] = []
        self.requests: list[dict[str, object]] = []

    def play(self, *names: str) -> None:
        self.bodies = [self._message((REPLIES / f"{name}.txt").read_text()) for name in names]

    @staticmethod
    def _message(text: str) -> bytes:
        return json.dumps({
            "id": "msg_01HCDu5LRGeP2o7s2xGmxyx8", "type": "message", "role": "assistant",
            "model": "claude-sonnet-5-5", "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 5200, "output_tokens": 2400},
        }).encode()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


@pytest.fixture
def api() -> Iterator[RecordedAPI]:
    recorded: list[RecordedAPI] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state = recorded[0]
            length = int(self.headers.get("content-length", "0"))
            state.requests.append(json.loads(self.rfile.read(length)))
            body = state.bodies[min(len(state.requests), len(state.bodies)) - 1]
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        recorded.append(RecordedAPI(server))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield recorded[0]
        finally:
            server.shutdown()
            thread.join(timeout=10)


def swarm(api: RecordedAPI, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and "BASE_URL" not in k}
    env |= {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": api.url}
    return subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )


def test_pose_writes_a_repaired_package_for_review_then_publishes_it(
    api: RecordedAPI, tmp_path: Path
) -> None:
    api.play("nondeterministic", "repair_evaluator")
    out = tmp_path / "review"
    done = swarm(api, "pose", STATEMENT, "--out", str(out), "--data-dir", str(tmp_path / "d"))
    assert done.returncode == 0, done.stderr
    assert len(api.requests) == 2
    assert "world: the evaluator's score changes" in done.stderr  # shown while it repairs
    assert "10,400 tokens in, 4,800 out, ~$0.0688 (claude-sonnet-5-5), 2 attempt(s)" in done.stderr
    assert f"wrote spam_keywords to {out}" in done.stdout
    assert not (tmp_path / "d" / "records.sqlite").exists()  # reviewed first, not published
    assert load_package(out).name == "spam_keywords"
    published = swarm(api, "pose", "--from", str(out), "--data-dir", str(tmp_path / "d"), "--json")
    assert published.returncode == 0, published.stderr
    report = json.loads(published.stdout)
    assert report["ok"] and report["score"] == 0.625 and len(report["problem"]) == 64
    assert len(api.requests) == 2  # --from asks no model


def test_pose_without_out_publishes_and_keeps_the_package(api: RecordedAPI, tmp_path: Path) -> None:
    api.play("good")
    data = tmp_path / "d"
    done = swarm(api, "pose", STATEMENT, "--data-dir", str(data), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["name"] == "spam_keywords" and report["checks"]["gaming"]
    assert (report["tokens_in"], report["tokens_out"], report["attempts"]) == (5200, 2400, 1)
    kept = load_package(data / "posed" / "spam_keywords")
    assert kept.name == "spam_keywords"
    status = json.loads(swarm(api, "status", "--data-dir", str(data), "--json").stdout)
    assert [p["id"] for p in status["problems"]] == [report["problem"]]


def test_a_pose_that_never_validates_writes_nothing(api: RecordedAPI, tmp_path: Path) -> None:
    api.play("constant_evaluator", "constant_again")
    out = tmp_path / "review"
    done = swarm(api, "pose", STATEMENT, "--out", str(out), "--attempts", "2",
                 "--data-dir", str(tmp_path / "d"))
    assert done.returncode == 1
    assert "attempt 2:" in done.stderr and "discriminates: no degraded strategy" in done.stderr
    assert "no package passed validation (attempts used up)" in done.stderr
    assert not out.exists() and not (tmp_path / "d" / "posed").exists()


def test_the_cost_budget_stops_a_pose_and_bad_flags_are_usage_errors(
    api: RecordedAPI, tmp_path: Path
) -> None:
    api.play("nondeterministic", "repair_evaluator")
    done = swarm(api, "pose", STATEMENT, "--max-cost", "0.01", "--data-dir", str(tmp_path / "d"))
    assert done.returncode == 1 and len(api.requests) == 1
    assert "money budget spent: $0.0344 of $0.01" in done.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    taken = swarm(api, "pose", STATEMENT, "--out", str(tmp_path / "full"))
    assert taken.returncode == 2 and "not an empty directory" in taken.stderr
    both = swarm(api, "pose", STATEMENT, "--from", str(tmp_path / "full"))
    assert both.returncode == 2 and "not both" in both.stderr
    assert len(api.requests) == 1  # usage errors cost nothing


@given(st.text(max_size=300))
def test_a_posed_problem_name_becomes_one_safe_directory_name(name: str) -> None:
    """A model writes the problem name; saved under the data dir's posed/, it must stay one
    plain path component there (no '/', '..', leading '-' or '.', controls)."""
    made = _dir_name(name)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", made)
    assert Path(made).name == made and made not in (".", "..")
