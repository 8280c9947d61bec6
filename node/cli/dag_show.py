"""`swarm dag show ID`: one record found by a unique id prefix (like git), with its lineage up,
its children and its evidence; a pattern's supporting, contradicting and control experiments,
a hypothesis's tests and verdict, an experiment's changes, patterns and verifications."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from node.cli.dag_view import (
    View,
    cut,
    delta_text,
    depth,
    hypothesis_state,
    one_line,
    open_view,
    pattern_scope,
    pattern_status,
    score_text,
    when,
)
from node.cli.options import EXIT_FAILURE, EXIT_USAGE, DataDir, _fail, err, out
from node.untrusted_text import markup

if TYPE_CHECKING:
    from research_dag import (
        Experiment,
        Hypothesis,
        Pattern,
        Problem,
        Record,
        Verdict,
        Verification,
    )

LISTED = 12  # entries of a list of evidence, children or matches shown; the rest counted
LINEAGE_HEAD, LINEAGE_TAIL = 2, 10  # a long lineage: its root end and the nearest ancestors
TEXT = 1_000  # characters of a statement or description shown
_PREFIX = re.compile(r"[0-9a-f]{4,64}")

IdArg = Annotated[str, typer.Argument(
    metavar="ID", help="A record id or a unique prefix of 4+ hex characters.")]


def show(record_id: IdArg, data_dir: DataDir = None) -> None:
    """One record with its lineage up, its children and its evidence."""
    with open_view(data_dir) as view:
        record = view.dag.get(resolve(view, record_id))
        if record is None:  # dropped between the lookup and now (swarm gc)
            _fail(f"record {record_id} is no longer held")
        _line("kind", record.kind)
        _line("id", record.id)
        _line("author", cut(record.author, 80))
        _line("created", when(record.created_ms))
        _show_kind(view, record)


def resolve(view: View, query: str) -> str:
    """The one held id `query` is a prefix of. Several: each listed, exit 2; none: exit 1,
    saying so when a record here refers to such an id (sync will ask for it)."""
    wanted = query.strip().lower()
    if not _PREFIX.fullmatch(wanted):
        _fail(f"{query!r} is not an id prefix: give 4 to 64 hex characters", EXIT_USAGE)
    matches = sorted(i for i in view.dag.ids() if i.startswith(wanted))
    if len(matches) == 1:
        return matches[0]
    if matches:
        err.print(f"[bold red]error:[/] {len(matches)} records match {wanted}; give more of "
                  "the id:", highlight=False)
        for record in view.dag.get_many(matches[:LISTED]):
            err.print(f"  {record.id[:16]}  {record.kind:<12} {one_line(record)}",
                      highlight=False, soft_wrap=True)
        if len(matches) > LISTED:
            err.print(f"  … {len(matches) - LISTED} more", highlight=False)
        raise typer.Exit(EXIT_USAGE)
    absent = sorted(i for i in view.dag.missing() if i.startswith(wanted))
    if absent:
        _fail(f"{absent[0][:16]}… is referenced here but not held yet (sync asks peers for it)",
              EXIT_FAILURE)
    _fail(f"no record {wanted} in {view.directory}", EXIT_FAILURE)


def _show_kind(view: View, record: Record) -> None:
    from research_dag import Experiment, Hypothesis, Pattern, Problem, Verdict, Verification

    if isinstance(record, Problem):
        _show_problem(view, record)
    elif isinstance(record, Experiment):
        _show_experiment(view, record)
    elif isinstance(record, Pattern):
        _show_pattern(view, record)
    elif isinstance(record, Hypothesis):
        _show_hypothesis(view, record)
    elif isinstance(record, Verdict):
        _show_verdict(view, record)
    elif isinstance(record, Verification):
        _show_verification(view, record)


def _show_problem(view: View, problem: Problem) -> None:
    from node.leaderboard import verified_best

    dag = view.dag
    headers = dag.experiment_headers(problem.id)
    best = verified_best(dag, view.ledger, problem.id)
    _line("name", cut(problem.name, 200))
    _line("metric", f"{cut(problem.metric.name, 60)}, {problem.metric.direction}"
          + ("" if problem.metric.target is None else f", target {problem.metric.target:.6g}"))
    _line("domains", cut(", ".join(problem.domains), 200) or "-")
    _line("lineage", f"{len(headers)} experiments, depth {depth(headers)}, verified best "
          f"{score_text(None if best is None else best.outcome.score)}"
          + ("" if best is None else f" ({best.id[:10]})"))
    _text("statement", problem.statement)
    roots = [h for h in headers if h.parent is None]
    _experiments(view, "baselines", [h.id for h in roots])
    hypotheses = dag.get_many(dag.hypothesis_ids_for(problem.id))
    _heading("hypotheses targeting it", len(hypotheses))
    for hypothesis in hypotheses[:LISTED]:
        out.print(f"  {hypothesis.id[:10]}  {one_line(hypothesis)}", highlight=False)
    _more(len(hypotheses))


def _show_experiment(view: View, experiment: Experiment) -> None:
    dag = view.dag
    header = dag.header(experiment.id)
    outcome = experiment.outcome
    delta = None if header is None else view.delta(header)
    finding = header is not None and view.is_finding(header)
    _line("problem", f"{view.problem_name(experiment.problem)} ({experiment.problem[:10]})")
    _line("outcome", f"{outcome.status} {score_text(outcome.score)} {delta_text(delta)} "
          + ("(improved on its parent)" if finding else
             "(baseline)" if experiment.parent is None else "(did not improve)"))
    _line("trust", view.trust(experiment))
    _line("mutation", f"{cut(experiment.mutation_kind, 60)} by {cut(experiment.mutator, 60)}")
    for change in experiment.changes or ():
        _line("change", f"{change.operation} {change.affordance} at {cut(change.site, 80)}"
              + (f" ({cut(change.note, 80)})" if change.note else ""))
    if experiment.changes is None:
        _line("change", "not described (made before the change vocabulary)")
    _text("description", experiment.description)
    _text("hypothesis", experiment.hypothesis)
    if experiment.hypothesis_id is not None:
        tested = dag.get(experiment.hypothesis_id)
        _line("tests", f"{experiment.hypothesis_id[:10]} "
              + (one_line(tested) if tested is not None else "(not held)"))
    _patterns(view, "applied patterns", list(experiment.applied or ()))
    _lineage(view, experiment.id)
    _experiments(view, "children", dag.linked_ids(experiment.id, "has_child"))
    _patterns(view, "supports patterns", dag.linked_ids(experiment.id, "supports"))
    _patterns(view, "contradicts patterns", dag.linked_ids(experiment.id, "contradicts"))
    verifications = dag.verifications_of(experiment.id)
    _heading("verifications", len(verifications))
    for verification in verifications[:LISTED]:
        out.print(f"  {verification.id[:10]}  {'match' if verification.match else 'MISMATCH'} "
                  f"{verification.outcome.status} {score_text(verification.outcome.score)} "
                  f"by {cut(verification.author, 60)}", highlight=False)
    _more(len(verifications))


def _show_pattern(view: View, pattern: Pattern) -> None:
    from node.cli.playbook import derived_here, evidence_counts
    from research_dag import Pattern

    dag = view.dag
    here = derived_here(view)
    _line("class", f"{cut(pattern.mutation_kind, 60)}, {pattern_status(pattern)}"
          + ("" if pattern.id in here else ", not derived here"))
    _text("statement", pattern.text)
    if pattern.refuted_if:
        _text("refuted if", pattern.refuted_if)
    scope = pattern_scope(view, pattern)
    _line("scope", cut(", ".join(view.problem_name(p) for p in scope), 300) or "-")
    _line("domains", cut(", ".join(pattern.domains), 200) or "-")
    counts = evidence_counts(view, pattern)
    _line("score", f"{counts.successes}/{counts.tries} improved "
          f"(control {counts.control_successes}/{counts.control_tries}), "
          f"P(lift > 0) = {counts.shown()}, lift {counts.lift_estimate:+.3f}"
          + (" (from the newest evidence only)" if counts.truncated else ""))
    if pattern.supersedes is not None:
        _line("supersedes", pattern.supersedes[:10]
              + ("" if pattern.supersedes in dag else " (not held)"))
    _patterns(view, "superseded by", [p.id for p in dag.records("pattern")
                                      if isinstance(p, Pattern) and p.supersedes == pattern.id])
    _experiments(view, "supporting", pattern.supporting)
    _experiments(view, "contradicting", pattern.contradicting)
    _experiments(view, "control", list(pattern.control or ()))
    hypotheses = dag.get_many(dag.linked_ids(pattern.id, "suggests"))
    _heading("hypotheses", len(hypotheses))
    for hypothesis in hypotheses[:LISTED]:
        out.print(f"  {hypothesis.id[:10]}  {one_line(hypothesis)}", highlight=False)
    _more(len(hypotheses))
    applied = dag.linked_ids(pattern.id, "applied_in")
    _line("applied in", f"{len(applied)} experiments")


def _show_hypothesis(view: View, hypothesis: Hypothesis) -> None:
    from research_dag import Verdict

    dag = view.dag
    source = dag.get(hypothesis.pattern)
    _line("pattern", f"{hypothesis.pattern[:10]} "
          + (one_line(source) if source is not None else "(not held)"))
    _line("target", f"{view.problem_name(hypothesis.problem)} ({hypothesis.problem[:10]})")
    _line("class", cut(hypothesis.mutation_kind, 60))
    sites = hypothesis.sites or []
    _line("sites", cut(", ".join(sites[:LISTED]), 300)
          + (f" … {len(sites) - LISTED} more" if len(sites) > LISTED else "") or "-")
    _line("prediction", "-" if hypothesis.expected_lift is None else
          f"success rate above the target's base rate by {hypothesis.expected_lift:+.3f}")
    verdicts = [v for v in dag.get_many(dag.linked_ids(hypothesis.id, "decided_by"))
                if isinstance(v, Verdict)]
    # Its tests: those naming it, and those its verdicts counted (a test may name another
    # node's id for the same hypothesis: playbook/hypotheses.py verdicts_of).
    tests = list(dict.fromkeys([*dag.linked_ids(hypothesis.id, "tested_by"),
                                *(t for v in verdicts for t in v.tests)]))
    from playbook import PLAN

    plan = (f"{hypothesis.tries} tests decide it (up to {PLAN.last(hypothesis.tries)} if "
            "inconclusive)" if hypothesis.tries else "? tests decide it")
    _line("plan", f"{plan}; {len(tests)} so far")
    _text("statement", hypothesis.text)
    if verdicts:
        _line("verdict", hypothesis_state(verdicts))
    else:  # open or withdrawn: as this node's own derivation holds it now
        from node.cli.playbook import current_patterns

        state = hypothesis_state(verdicts, hypothesis.id in current_patterns(view).open)
        _line("verdict", state if state == "open" else f"{state} (no verdict; its class is "
              "retired, or the evidence this node counts no longer makes it: not tested here)")
    for verdict in verdicts[:LISTED]:
        out.print(f"  {verdict.id[:10]}  {verdict.result} by {len(verdict.tests)} tests "
                  f"vs {len(verdict.control)} control: {cut(verdict.text, 200)}",
                  highlight=False)
    _experiments(view, "tests", tests)


def _show_verdict(view: View, verdict: Verdict) -> None:
    hypothesis = view.dag.get(verdict.hypothesis)
    _line("hypothesis", f"{verdict.hypothesis[:10]} "
          + (one_line(hypothesis) if hypothesis is not None else "(not held)"))
    _line("result", verdict.result)
    _text("why", verdict.text)
    _experiments(view, "tests", verdict.tests)
    _experiments(view, "control", verdict.control)


def _show_verification(view: View, verification: Verification) -> None:
    _line("replay", f"{'match' if verification.match else 'MISMATCH'}: "
          f"{verification.outcome.status} {score_text(verification.outcome.score)}")
    _experiments(view, "of experiment", [verification.experiment])


def _lineage(view: View, experiment_id: str) -> None:
    """The ancestors from the root down to the parent, read as headers; a long one shows its
    root end and its nearest ancestors, the middle counted."""
    chain: list[str] = []
    header = view.dag.header(experiment_id)
    seen = {experiment_id}
    while header is not None and header.parent is not None and header.parent not in seen:
        seen.add(header.parent)
        chain.append(header.parent)
        header = view.dag.header(header.parent)
    chain.reverse()
    _heading("lineage up", len(chain))
    if len(chain) <= LINEAGE_HEAD + LINEAGE_TAIL:
        _experiment_lines(view, chain)
        return
    _experiment_lines(view, chain[:LINEAGE_HEAD])
    out.print(f"  … {len(chain) - LINEAGE_HEAD - LINEAGE_TAIL} more", highlight=False)
    _experiment_lines(view, chain[-LINEAGE_TAIL:])


def _experiments(view: View, title: str, ids: list[str]) -> None:
    _heading(title, len(ids))
    _experiment_lines(view, ids[:LISTED])
    _more(len(ids))


def _experiment_lines(view: View, ids: list[str]) -> None:
    """One line per experiment: id, problem, score, Δ vs its parent, improved or not, the
    ledger's verdict, its kind; loaded in one pass (only those shown)."""
    from research_dag import Experiment

    held = {r.id: r for r in view.dag.get_many(ids) if isinstance(r, Experiment)}
    for record_id in ids:
        experiment = held.get(record_id)
        header = view.dag.header(record_id)
        if experiment is None or header is None:
            out.print(f"  {record_id[:10]}  (not held)", highlight=False)
            continue
        mark = "✓" if view.is_finding(header) else "·" if header.score is not None else "✗"
        out.print(f"  {mark} {record_id[:10]}  {view.problem_name(header.problem):<16} "
                  f"{score_text(experiment.outcome.score):>10} {delta_text(view.delta(header)):>9}"
                  f"  {experiment.outcome.status:<8} {view.trust(experiment):<16} "
                  f"{cut(experiment.mutation_kind, 30)}", highlight=False)


def _patterns(view: View, title: str, ids: list[str]) -> None:
    from research_dag import Pattern

    if not ids:
        return
    _heading(title, len(ids))
    held = {r.id: r for r in view.dag.get_many(ids[:LISTED]) if isinstance(r, Pattern)}
    for pattern_id in ids[:LISTED]:
        pattern = held.get(pattern_id)
        out.print(f"  {pattern_id[:10]}  " + ("(not held)" if pattern is None else
                  f"{pattern_status(pattern):<9} {one_line(pattern)}"), highlight=False)
    _more(len(ids))


def _line(label: str, value: str) -> None:
    """A field of ours and its (already sanitised) value."""
    out.print(f"[bold]{label:<11}[/] {value}", highlight=False, soft_wrap=True)


def _text(label: str, text: str) -> None:
    """A peer's free text: lines kept, every control character inert, cut at TEXT."""
    if not text:
        return
    shown = text if len(text) <= TEXT else text[: TEXT - 1] + "…"
    out.print(f"[bold]{label}[/]", highlight=False)
    out.print("  │ " + markup(shown).replace("\n", "\n  │ "), highlight=False, soft_wrap=True)


def _heading(title: str, count: int) -> None:
    out.print(f"[bold]{title}[/] ({count})", highlight=False)


def _more(count: int) -> None:
    if count > LISTED:
        out.print(f"  … {count - LISTED} more", highlight=False)

