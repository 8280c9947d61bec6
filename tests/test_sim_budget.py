"""`swarm simulate --max-tokens / --max-cost`: one budget for the whole simulation's model calls
(every node's evaluations and spot checks), as `swarm run` has for its own. Once it is spent the
simulation ends after the round being run, says so in one line, reports why (`stop_reason`)
and exits normally, with its report. Checked with the stand-in's token counts, and with a paid
provider's dollars through a recorded Anthropic endpoint on 127.0.0.1 (the real client, the
real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "skill_landing_copy"
ROUNDS = 30
TOKENS = (100, 20)  # each recorded reply's usage: $0.0004 at the Anthropic default prices


def test_a_token_budget_stops_the_simulation_cleanly() -> None:
    result = _swarm("simulate", "--nodes", "2", "--problem", str(EXAMPLE), "--rounds",
                    str(ROUNDS), "--no-stop", "--max-tokens", "10000", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["stop_reason"] == "model_budget"
    assert 1 <= report["rounds_run"] < ROUNDS
    assert "token budget spent" in result.stderr
    usage = report["model_usage"]
    # Spent, and not by much more than a round's calls (~7,000 tokens for 2 nodes here).
    assert 10_000 <= usage["input_tokens"] + usage["output_tokens"] < 10_000 + 20_000
    assert report["swarm"]["baseline"] == 0.4  # the run before the budget ran out is real


def test_a_money_budget_stops_a_simulation_on_a_paid_provider(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    with _recorded_anthropic() as (url, calls):
        result = _swarm("simulate", "--nodes", "1", "--problem", str(EXAMPLE), "--rounds",
                        str(ROUNDS), "--no-stop", "--eval-model", "anthropic",
                        "--max-cost", "0.01", "--report", str(page),
                        env={"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "money budget spent" in result.stderr
    assert "stopped" in result.stderr
    cost = len(calls) * (TOKENS[0] * 2.0 + TOKENS[1] * 10.0) / 1e6
    assert 0.01 <= cost < 0.01 + 0.02  # at most a round's calls past the budget (20 a node)
    assert f"${cost:.4f}" in result.stdout  # the evaluations' usage line
    assert page.stat().st_size > 0  # the report is still written


def test_a_budget_for_a_problem_that_asks_no_model_is_said_to_cap_nothing() -> None:
    plain = EXAMPLE.parent / "landing_copy"
    result = _swarm("simulate", "--nodes", "1", "--problem", str(plain), "--rounds", "1",
                    "--no-stop", "--max-cost", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert "nothing to cap" in result.stderr
    report = json.loads(result.stdout)
    assert (report["stop_reason"], report["rounds_run"]) == ("rounds", 1)
    assert "model_usage" not in report


@contextmanager
def _recorded_anthropic() -> Iterator[tuple[str, list[bytes]]]:
    """An Anthropic Messages endpoint on 127.0.0.1 answering with recorded-looking replies: a
    blurb for a completion, "yes" for a judgement; every request body is kept."""
    calls: list[bytes] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server calls it by this name
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                calls.append(body)
            text = ("yes" if b"Answer yes or no" in body
                    else "Meet the Lamp, bright and calm, for $20. Order yours today.")
            reply = json.dumps({
                "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
                "model": "claude-sonnet-5-5", "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": TOKENS[0], "output_tokens": TOKENS[1]},
            }).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _swarm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
