"""`swarm dag` (summary, show, tree, export), `swarm playbook` and `swarm log --markdown` on a
real store holding a small Research DAG: two problems, a lineage with kept, discarded, failed
and adopted peer attempts, replays, a pattern, a hypothesis carried to the other problem, its
tests and verdict; rendered to strings in this process (typer's CliRunner), and a hostile
record of every kind shown inert and bounded in every view."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from node.cli import app
from node.cli.playbook import lift_probability
from node.problem import load_package
from node.store import RecordStore
from node.untrusted_text import BIDI
from playbook import patterns_derived_here
from research_dag import (
    DERIVED_AUTHOR,
    Change,
    Experiment,
    Hypothesis,
    Outcome,
    Pattern,
    Problem,
    Record,
    Verdict,
    Verification,
)

PROBE = Path(__file__).parent / "fixtures" / "probe"
PEER, REPLAYER = "12D3KooWpeer", "12D3KooWreplayer"
PRUNE = [Change(operation="prune", affordance="weight_vector", site="strategy.py:WEIGHTS[1]")]


def swarm(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "220"}).invoke(app, list(args))


def _experiment(problem: Problem, parent: Experiment | None, score: float | None, at: int,
                **fields: object) -> Experiment:
    outcome = Outcome(status="ok", score=score) if score is not None else Outcome(status="crash")
    values: dict[str, object] = {
        "problem": problem.id, "parent": None if parent is None else parent.id,
        "strategy": {"strategy.py": f"# {at}\n"}, "outcome": outcome, "created_ms": at,
        "mutation_kind": "baseline" if parent is None else "perturb",
        "description": f"attempt {at}",
    }
    values.update(fields)
    return Experiment.model_validate(values)


@dataclass
class Held:
    """The records of the small DAG, by role."""

    data: Path
    problem: Problem
    target: Problem
    base: Experiment
    kept: Experiment
    discarded: Experiment
    failed: list[Experiment]
    peer: Experiment
    adopted: Experiment
    pattern: Pattern
    hypothesis: Hypothesis
    tests: list[Experiment]
    verdict: Verdict


def _store(data: Path, records: list[Record]) -> None:
    with RecordStore.open(data / "records.sqlite") as store:
        for record in records:
            store.add(record)


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Held:
    data = tmp_path_factory.mktemp("dag")
    problem = load_package(PROBE)
    target = problem.model_copy(update={"name": "probe-b", "domains": ["finance"], "seed": 8})
    base = _experiment(problem, None, 1.0, 1)
    kept = _experiment(problem, base, 2.0, 2, mutation_kind="prune", changes=PRUNE)
    discarded = _experiment(problem, kept, 1.5, 3, changes=PRUNE)
    failed = [_experiment(problem, kept, None, 4 + n) for n in range(3)]
    better = _experiment(problem, kept, 3.0, 8)
    peer = _experiment(problem, better, 4.0, 9, author=PEER)
    adopted = _experiment(problem, peer, 4.5, 10)
    replay = Verification(experiment=peer.id, outcome=peer.outcome, match=True,
                          author=REPLAYER, created_ms=11)
    pattern = Pattern(
        mutation_kind="prune:weight_vector", operation="prune", affordance="weight_vector",
        text="pruning a weight helps", supporting=[kept.id], contradicting=[discarded.id],
        control=[better.id, *(f.id for f in failed)], problems=[problem.id], status="live",
        success_rate=0.5, mean_delta=1.0, domains=["test"], author=DERIVED_AUTHOR,
        created_ms=11, refuted_if="prunes stop improving",
    )
    hypothesis = Hypothesis(
        pattern=pattern.id, problem=target.id, mutation_kind="prune:weight_vector",
        operation="prune", affordance="weight_vector", text="pruning helps probe-b too",
        sites=["strategy.py:WEIGHTS"], expected_lift=0.25, tries=2, author=DERIVED_AUTHOR,
        created_ms=12,
    )
    target_base = _experiment(target, None, 1.0, 13)
    tests = [_experiment(target, target_base, score, 14 + n, hypothesis_id=hypothesis.id,
                         changes=PRUNE) for n, score in enumerate((2.0, 0.5))]
    verdict = Verdict(hypothesis=hypothesis.id, result="confirmed",
                      tests=[t.id for t in tests], text="1 of 2 improved", author=DERIVED_AUTHOR,
                      created_ms=16)
    _store(data, [problem, target, base, kept, discarded, *failed, better, peer, adopted, replay,
                  pattern, hypothesis, target_base, *tests, verdict])
    return Held(data, problem, target, base, kept, discarded, failed, peer, adopted, pattern,
                hypothesis, tests, verdict)


def test_summary_counts_each_kind_depth_best_patterns_and_hypotheses(held: Held) -> None:
    done = swarm("dag", "--json", "--data-dir", str(held.data))
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    rows = {row["name"]: row for row in report["problems"]}
    probe, target = rows["probe"], rows["probe-b"]
    assert probe["records"] == {"experiment": 9, "verification": 1, "pattern": 1,
                                "hypothesis": 0, "verdict": 0}
    assert probe["depth"] == 5  # base -> kept -> better -> peer -> adopted
    # the peer's 4.0 has one replay by a peer we never measured: not verified; ours is
    assert probe["best"] == 4.5 and probe["best_experiment"] == held.adopted.id
    # Counted as `swarm playbook` shows them: this node's own pattern of the class (a
    # candidate: its four prunes), not the held live one its evidence does not make.
    assert probe["patterns"] == {"live": 0, "candidate": 1, "retired": 0}
    assert target["hypotheses"] == {"open": 0, "confirmed": 1, "refuted": 0, "withdrawn": 0}
    assert target["records"]["verdict"] == 1 and target["depth"] == 2
    assert {d["domain"]: d["problems"] for d in report["domains"]} == {"test": 1, "finance": 1}
    assert report["records"] == 18 and report["unattached"] == 0 and report["missing"] == 0
    text = swarm("dag", "--data-dir", str(held.data))
    assert text.exit_code == 0 and "probe-b" in text.stdout and "0/1/0" in text.stdout


def test_show_finds_a_unique_prefix_lists_ambiguous_ones_and_says_none(held: Held) -> None:
    d = ("--data-dir", str(held.data))
    done = swarm("dag", "show", held.kept.id[:8], *d)
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert "prune weight_vector at strategy.py:WEIGHTS[1]" in out
    assert "(improved on its parent)" in out and "+1" in out
    assert "lineage up (1)" in out and "children (5)" in out
    assert "supports patterns (1)" in out and "pruning a weight" in out
    # every record kind shows
    for record in (held.problem, held.pattern, held.hypothesis, held.verdict, held.peer):
        shown = swarm("dag", "show", record.id, *d)
        assert shown.exit_code == 0 and record.id in shown.stdout, shown.output
    ids = [r.id for r in (held.base, held.kept, held.discarded, *held.failed, held.peer,
                          held.adopted, held.problem, held.target, held.pattern, held.hypothesis)]
    missing = swarm("dag", "show", next(p for p in ("ffff", "0000", "aaaa")
                                        if not any(i.startswith(p) for i in ids)), *d)
    assert missing.exit_code == 1 and "no record" in missing.stderr
    bad = swarm("dag", "show", "xyz!", *d)
    assert bad.exit_code == 2 and "not an id prefix" in bad.stderr


def test_an_ambiguous_prefix_lists_every_match_and_exits_2(tmp_path: Path) -> None:
    problem = load_package(PROBE)
    seen: dict[str, Experiment] = {}
    for at in range(100_000):  # a birthday collision of 4 hex characters: ~300 tries
        experiment = _experiment(problem, None, 1.0, at)
        other = seen.setdefault(experiment.id[:4], experiment)
        if other is not experiment:
            break
    _store(tmp_path, [problem, other, experiment])
    done = swarm("dag", "show", experiment.id[:4], "--data-dir", str(tmp_path))
    assert done.exit_code == 2 and "2 records match" in done.stderr
    listed = sorted(line.split()[0] for line in done.stderr.splitlines()
                    if line.startswith("  "))
    assert listed == sorted([other.id[:16], experiment.id[:16]])


def test_a_pattern_shows_its_evidence_with_scores_and_verdicts(held: Held) -> None:
    done = swarm("dag", "show", held.pattern.id[:10], "--data-dir", str(held.data))
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert "supporting (1)" in out and "contradicting (1)" in out and "control (4)" in out
    assert "1/2 improved (control 1/4)" in out  # `better` improved on its parent
    assert "hypotheses (1)" in out and "prunes stop improving" in out
    hypothesis = swarm("dag", "show", held.hypothesis.id[:10], "--data-dir", str(held.data))
    assert "verdict     confirmed" in hypothesis.stdout and "tests (2)" in hypothesis.stdout
    assert "2 tests decide it (up to 4 if inconclusive); 2 so far" in hypothesis.stdout


def test_tree_marks_kept_discarded_peer_adopted_and_folds_failures(held: Held) -> None:
    done = swarm("dag", "tree", "probe", "--data-dir", str(held.data))
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert "3 failed attempts (folded)" in out
    assert out.count("kept") == 4 and out.count("discarded") == 1 and "baseline" in out
    assert "drawn" not in out  # every experiment is drawn or folded
    assert f"peer {PEER}" in out and "adopted" in out and "★ verified best" in out
    narrow = swarm("dag", "tree", held.problem.id[:8], "--width", "1", "--depth", "3",
                   "--data-dir", str(held.data))
    assert narrow.exit_code == 0, narrow.output
    assert "… 1 more attempt\n" in narrow.stdout and "… 2 more below" in narrow.stdout
    assert "experiments drawn" in narrow.stdout
    nope = swarm("dag", "tree", "nope", "--data-dir", str(held.data))
    assert nope.exit_code == 2


@pytest.mark.parametrize("form", ["json", "dot", "graphml"])
def test_export_writes_every_record_and_edge(held: Held, form: str, tmp_path: Path) -> None:
    target = tmp_path / f"dag.{form}"
    done = swarm("dag", "export", "--format", form, "-o", str(target),
                 "--data-dir", str(held.data))
    assert done.exit_code == 0, done.output
    text = target.read_text()
    for record in (held.problem, held.pattern, held.hypothesis, held.verdict):
        assert record.id in text
    if form == "json":
        graph = json.loads(text)
        assert len(graph["nodes"]) == 18
        assert {e["rel"] for e in graph["edges"]} >= {"supports", "suggests", "decided_by",
                                                      "tested_by", "has_child"}
    assert swarm("dag", "export", "--format", "png", "--data-dir",
                 str(held.data)).exit_code == 2


def test_playbook_lists_live_patterns_with_evidence_and_lift(held: Held) -> None:
    """This node's own pattern of each class comes first, derived now (not stored yet); the
    held pattern of that class its evidence does not make is shown with --all, marked. The
    evidence counts by the node's own rule: the peer's attempts count (its author vouches),
    not only what was replayed (then no stored pattern of a 16-node run was "derived here")."""
    default = swarm("playbook", "--json", "--data-dir", str(held.data))
    assert default.exit_code == 0 and json.loads(default.stdout) == [], default.output
    assert "no live pattern yet" in swarm("playbook", "--data-dir", str(held.data)).stdout
    done = swarm("playbook", "--all", "--json", "--data-dir", str(held.data))
    assert done.exit_code == 0, done.output
    mine, row = json.loads(done.stdout)
    assert (mine["class"], mine["status"], mine["derived_here"], mine["stored"]) == (
        "prune:weight_vector", "candidate", True, False)
    assert (mine["supporting"], mine["contradicting"]) == (2, 2)  # kept, a test; the others
    assert row["id"] == held.pattern.id and row["status"] == "live"
    assert (row["supporting"], row["contradicting"], row["control"]) == (1, 1, 4)
    assert row["control_improved"] == 1
    assert row["derived_here"] is False  # written by hand: not what this node derives
    assert row["p_lift"] == pytest.approx(float(lift_probability(1, 2, 1, 4)))
    assert row["problem_names"] == ["probe"]
    table = swarm("playbook", "--all", "--data-dir", str(held.data))
    assert "prune:weight_vector" in table.stdout and "pruning a weight helps" in table.stdout
    assert "not derived here" in table.stdout and "derived now" in table.stdout


def test_a_pattern_this_node_derives_is_marked_derived_here(held: Held, tmp_path: Path) -> None:
    with RecordStore.open(held.data / "records.sqlite") as store:
        records = list(store.iter_records())
        mine = patterns_derived_here(store.load_dag(), lambda experiment: experiment.author
                                     == "local")
    assert mine  # four described attempts of prune:weight_vector, all ours
    _store(tmp_path, [*records, *mine])
    rows = json.loads(swarm("playbook", "--all", "--json", "--data-dir", str(tmp_path)).stdout)
    marks = {row["id"]: row["derived_here"] for row in rows}
    assert all(marks[pattern.id] for pattern in mine)


def test_evidence_at_its_bound_is_marked_and_unheld_evidence_is_named(tmp_path: Path) -> None:
    import hashlib

    problem = load_package(PROBE)
    absent = [hashlib.sha256(bytes([n, m])).hexdigest() for n in range(2) for m in range(128)]
    pattern = Pattern(mutation_kind="prune:weight_vector", operation="prune",
                      affordance="weight_vector", text="many", supporting=absent,
                      problems=[problem.id], status="live", author=DERIVED_AUTHOR)
    _store(tmp_path, [problem, pattern])
    d = ("--data-dir", str(tmp_path))
    [row] = json.loads(swarm("playbook", "--json", *d).stdout)
    assert row["evidence_truncated"] is True and row["supporting"] == 256
    assert "≈" in swarm("playbook", *d).stdout
    shown = swarm("dag", "show", pattern.id[:6], *d)
    assert "from the newest evidence only" in shown.stdout and "(not held)" in shown.stdout
    summary = json.loads(swarm("dag", "--json", *d).stdout)
    assert summary["missing"] == 256
    unheld = swarm("dag", "show", absent[0][:12], *d)
    assert unheld.exit_code == 1 and "referenced here but not held" in unheld.stderr


def test_lift_probability_is_exact() -> None:
    assert lift_probability(0, 0, 0, 0) == Fraction(1, 2)  # two uniform priors
    assert lift_probability(3, 5, 3, 5) == Fraction(1, 2)
    # P(Beta(2,1) > Beta(1,1)) = integral of 2x * x dx = 2/3
    assert lift_probability(1, 1, 0, 0) == Fraction(2, 3)
    assert lift_probability(10, 10, 0, 10) > Fraction(999, 1000)


def test_log_markdown_groups_attempts_into_phases(held: Held) -> None:
    done = swarm("log", "probe", "--markdown", "--data-dir", str(held.data))
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert out.startswith("# probe")
    assert "## Phase 1" in out and "## Phase 2" in out
    assert "prune weight_vector at strategy.py:WEIGHTS\\[1\\]" in out
    assert "supports pattern" in out and "Δ +1" in out


# Every terminal trick (tests/test_cli_hostile_text.py): screen clear, a fake status line, a
# window title, a clipboard write, a link, an 8-bit CSI, bidi; and rich markup that raises.
SPOOF = ("\x1b[2J\x1b[1;32mstatus: ok\x1b[0m\x1b]0;pwned\x07\x1b]52;c;Y3VybA==\x07"
         "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\x9b31m\u202eevil\u2066x\u2069")
MARKUP = "[/] [link=https://evil.example]click[/link] [bold red]loud"
HOSTILE = MARKUP + " " + SPOOF
HUGE = (HOSTILE + "\n# heading | cell <b>") * 60


def _assert_inert(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text
    assert not any(0x80 <= ord(char) <= 0x9F for char in text)
    assert not any(char in BIDI for char in text)
    assert "Traceback" not in text and "MarkupError" not in text
    assert HUGE[:4000] not in text and len(text) < 60_000  # cut, never the whole text


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """A data directory where a peer wrote hostile text into every field a view shows."""
    data = tmp_path_factory.mktemp("hostile")
    problem = load_package(PROBE).model_copy(update={
        "name": HOSTILE[:200], "statement": HUGE[:4000], "domains": [HOSTILE[:200]]})
    base = _experiment(problem, None, 1.0, 1)
    change = Change(operation="other", affordance="other", site=HOSTILE[:200],
                    note=HOSTILE[:200])
    claim = _experiment(problem, base, 2.0, 2, author=HOSTILE[:128], mutation_kind=HOSTILE[:200],
                        description=HUGE[:4000], hypothesis=HUGE[:4000], mutator=HOSTILE[:200],
                        changes=[change])
    child = _experiment(problem, claim, 3.0, 3, description=HUGE[:4000])
    replay = Verification(experiment=claim.id, outcome=claim.outcome, match=False,
                          author=HOSTILE[:128], created_ms=4)
    pattern = Pattern(mutation_kind=HOSTILE[:200], text=HUGE[:4000], supporting=[claim.id],
                      control=[child.id], problems=[problem.id], status="live",
                      domains=[HOSTILE[:200]], refuted_if=HUGE[:4000], author=DERIVED_AUTHOR,
                      created_ms=5)
    hypothesis = Hypothesis(pattern=pattern.id, problem=problem.id, mutation_kind=HOSTILE[:200],
                            text=HUGE[:4000], sites=[HOSTILE[:200]] * 20, author=DERIVED_AUTHOR,
                            created_ms=6)
    test = _experiment(problem, base, 0.5, 7, hypothesis_id=hypothesis.id, applied=[pattern.id])
    verdict = Verdict(hypothesis=hypothesis.id, result="refuted", tests=[test.id],
                      text=HUGE[:4000], author=DERIVED_AUTHOR, created_ms=8)
    records: list[Record] = [problem, base, claim, child, replay, pattern, hypothesis, test,
                             verdict]
    _store(data, records)
    return data, records


def test_a_hostile_record_of_every_kind_is_inert_and_bounded_in_every_view(
    hostile: tuple[Path, list[Record]]
) -> None:
    data, records = hostile
    problem_id = records[0].id
    views = [("dag",), ("dag", "--json"), ("dag", "tree", problem_id[:8]),
             ("dag", "export", "--format", "json"), ("dag", "export", "--format", "dot"),
             ("dag", "export", "--format", "graphml"), ("playbook",), ("playbook", "--json"),
             ("playbook", "--all"), ("log", problem_id[:8], "--markdown"),
             *(("dag", "show", record.id[:12]) for record in records)]
    for view in views:
        done = swarm(*view, "--data-dir", str(data))
        assert done.exit_code == 0 and done.exception is None, (view, done.output)
        _assert_inert(done.output)
        if "--json" in view or "json" in view:
            assert done.stdout.isascii()
            json.loads(done.stdout)
    shown = swarm("dag", "show", records[2].id, "--data-dir", str(data)).stdout
    assert "\\x1b]52;c;" in shown and MARKUP in shown  # shown as text, brackets as typed
    markdown = swarm("log", problem_id, "--markdown", "--data-dir", str(data)).stdout
    assert "<b>" not in markdown and "\\[link=" in markdown  # no HTML, no link of its own
    assert not any(line.startswith("# heading") for line in markdown.splitlines())


def test_a_vouched_peers_failed_attempts_count_and_each_class_shows_once(tmp_path: Path) -> None:
    """The views derive as the node does (node/knowledge.py `evidence_rule`): a peer's failed
    attempt counts when its author vouches, not only what was replayed. Counting only
    replayed experiments kept every peer's failure out (a success rate from successes alone),
    and of a 16-node simulation's stored patterns none was "derived here"; and its playbook
    listed several heads of one class (older lines, each once derived): now one per class."""
    problem = load_package(PROBE)
    base = _experiment(problem, None, 1.0, 1)
    mine = [_experiment(problem, base, score, 2 + n, changes=PRUNE)
            for n, score in enumerate((2.0, 0.5, 2.5, 0.5))]
    claim = _experiment(problem, base, 3.0, 10, author=PEER)
    replayed = Verification(experiment=claim.id, outcome=claim.outcome, match=True,
                            created_ms=11)  # ours: the peer vouches now
    failures = [_experiment(problem, base, 0.1, 12 + n, author=PEER, changes=PRUNE)
                for n in range(4)]
    stale = [Pattern(mutation_kind="prune:weight_vector", operation="prune",
                     affordance="weight_vector", text=f"an older line {n}", supporting=[mine[0].id],
                     problems=[problem.id], status="live", author=DERIVED_AUTHOR, created_ms=20 + n)
             for n in range(2)]
    _store(tmp_path, [problem, base, *mine, claim, replayed, *failures, *stale])
    rows = json.loads(swarm("playbook", "--all", "--json", "--data-dir", str(tmp_path)).stdout)
    ours = [row for row in rows if row["derived_here"]]
    assert [row["class"] for row in ours] == ["prune:weight_vector"]
    assert (ours[0]["supporting"], ours[0]["contradicting"]) == (2, 6)  # the peer's 4 failures
    assert sorted(row["statement"] for row in rows if not row["derived_here"]) == [
        "an older line 0", "an older line 1"]  # with --all only, marked
    shown = json.loads(swarm("playbook", "--json", "--data-dir", str(tmp_path)).stdout)
    assert all(row["derived_here"] for row in shown)  # never two lines of one class


def test_a_hypothesis_without_a_verdict_is_open_only_while_this_node_holds_it_open(
        tmp_path: Path) -> None:
    """`swarm dag`, `dag show` and the dashboard's playbook page call a stored hypothesis
    without a verdict open while this node's derivation holds it open; once its class is
    retired it is withdrawn (no node of ours tests it), where they showed it open forever."""
    from playbook_history import History, make_problem
    from starlette.testclient import TestClient

    from node.web import DashboardSource
    from node.web.app import dashboard_app
    from playbook import derivation

    history = History([make_problem(name, domains=[name], at=at) for at, name in
                       enumerate(("credit", "finance", "search"), start=1)])
    prune, mine = "prune:weight_vector", ("local",)
    for name in ("credit", "finance", "search"):
        history.attempts(name, "perturb:weight_vector", 4, 36, authors=mine)
    for _ in range(4):  # pruning helps on both sources, from the start
        for name in ("credit", "finance"):
            history.attempts(name, prune, 3, 1, authors=mine)

    def shown(data: Path) -> tuple[dict[str, int], str, str]:
        summary = json.loads(swarm("dag", "--json", "--data-dir", str(data)).stdout)
        [row] = [r for r in summary["problems"] if r["name"] == "search"]
        show = swarm("dag", "show", hypothesis.id[:12], "--data-dir", str(data))
        assert show.exit_code == 0, show.output
        with RecordStore.open(data / "records.sqlite") as store:
            app = dashboard_app(DashboardSource(store=lambda: store),
                                allowed_hosts=["testserver"])
            with TestClient(app) as client:
                [page] = client.get("/api/playbook").json()["hypotheses"]
        return row["hypotheses"], show.stdout, page["state"]

    def local(experiment: Experiment) -> bool:
        return experiment.author == "local"

    [hypothesis] = derivation(history.dag(), local).hypotheses
    assert hypothesis.problem == history.problems["search"].id
    _store(tmp_path / "open", [*history.records, hypothesis])
    counts, show, page = shown(tmp_path / "open")
    assert counts == {"open": 1, "confirmed": 0, "refuted": 0, "withdrawn": 0}
    assert "verdict     open" in show and page == "open"

    for name in ("credit", "finance"):  # then it stops helping: retired
        history.attempts(name, prune, 0, 500, authors=mine)
    assert derivation(history.dag(), local).chains[prune][-1].pattern.status == "retired"
    _store(tmp_path / "retired", [*history.records, hypothesis])
    counts, show, page = shown(tmp_path / "retired")
    assert counts == {"open": 0, "confirmed": 0, "refuted": 0, "withdrawn": 1}
    assert "withdrawn (no verdict" in show and page == "withdrawn"
