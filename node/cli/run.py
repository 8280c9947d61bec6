"""`swarm run`: one node, one problem, solo: the research loop with a live progress line and a
summary. `swarm eval` is node/cli/evaluate.py's, `swarm log` node/cli/changelog.py's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from node.cli.models import (
    EvalModel,
    UsageLine,
    budget_spent,
    evaluation_for,
    open_gateway,
    usage_text,
)
from node.cli.options import (
    EXIT_INTERRUPTED,
    BaseUrl,
    DashboardFlag,
    DashboardPort,
    DataDir,
    JsonFlag,
    MaxCost,
    MaxTokens,
    Model,
    NoStop,
    PackageDir,
    _data_dir,
    _fail,
    _fmt,
    _load_problem,
    _mutator,
    _print_json,
    _runtime,
    err,
    out,
)
from node.untrusted_text import inline, markup

if TYPE_CHECKING:
    from node.loop import LoopSummary, Step
    from node.store import RecordStore
    from research_dag import Experiment, Problem, Transcript


def _trusted(store: RecordStore, data_dir: Path | None) -> Callable[[Experiment], bool]:
    """Which stored experiments a solo run may build on and a changelog may keep: ours (a solo
    run's, and a swarm node's under its peer id) and peers' claims our own replays reproduced.
    A data directory `swarm join` also used holds every peer's claims, forged ones too: taken
    as they are, a peer's 1e9 became the run's baseline and best."""
    from node.identity import IDENTITY_FILE, IdentityError, load_or_create
    from node.store import StoreError
    from node.trust import TrustConfig, rebuild_ledger
    from research_dag import Verification

    key = _data_dir(data_dir) / IDENTITY_FILE
    me = "local"
    if key.exists() or key.is_symlink():  # a solo data directory has no identity: none made
        try:
            me = load_or_create(key).peer_id
        except IdentityError as error:
            _fail(str(error))
    try:  # our replays only: decoding the whole store cost a big swarm directory seconds
        mine = [record for record in store.iter_records(kind="verification")
                if isinstance(record, Verification) and record.author == me]
    except StoreError as error:
        _fail(str(error))
    return rebuild_ledger(me, mine, TrustConfig()).trusted


def run(
    package: PackageDir,
    iterations: Annotated[int, typer.Option(min=1, max=100_000, help="Iterations this run.")] = 50,
    mutator: Annotated[
        str, typer.Option(help="offline (default, no network), anthropic or openai.")
    ] = "offline",
    model: Model = None,
    base_url: BaseUrl = None,
    max_tokens: MaxTokens = None,
    max_cost: MaxCost = None,
    fuel_budget: Annotated[
        int | None, typer.Option(help="Stop after this much sandbox fuel in total.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the mutation choices.")] = 0,
    no_stop: NoStop = False,
    drift: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Neutral drift: at most this share of the attempts may become "
        "the parent by scoring exactly the best's score with a change of numbers only (to "
        "cross plateaus; 0: strict improvements only). The changelog shows them as drift.")
    ] = 0.0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
    dashboard: DashboardFlag = False,
    dashboard_port: DashboardPort = 8321,
    eval_model: EvalModel = "standin",
) -> None:
    """Run the autoresearch loop on one problem, solo: mutate, evaluate, keep or revert, log."""
    import functools

    import trio

    from node.knowledge import CURATE_EVERY, NodeKnowledge, store_derived
    from node.loop import LoopConfig, ResearchLoop
    from node.report import summary_json
    from node.store import RecordStore, StoreError
    from node.web import DashboardError
    from sandbox import Evaluator

    problem = _load_problem(package)
    runtime = _runtime(quiet=as_json)
    chosen, close = _mutator(mutator, model, base_url, max_tokens, max_cost)
    gateway = None if problem.model is None else open_gateway(
        eval_model, model, base_url, max_tokens, max_cost, getattr(chosen, "meter", None))
    config = LoopConfig(iterations=iterations, fuel_budget=fuel_budget, seed=seed,
                        stop_at_target=not no_stop, drift=drift)
    try:
        store = RecordStore.open(_data_dir(data_dir) / "records.sqlite")
    except StoreError as error:
        _fail(str(error))
    progress = _Progress(problem, iterations, enabled=not as_json)
    progress.model_usage = None if gateway is None else UsageLine(gateway)
    with store, Evaluator(runtime, problem) as evaluator:
        trusted = _trusted(store, data_dir)
        # The playbook derived from this store, as a swarm node derives it from its DAG: used
        # from the first attempt, derived again every few, stored when the run ends.
        try:
            # The problem first: a DAG knows the problems it held when loaded, and the curator
            # reads only their experiments (and targets only them with hypotheses).
            store.add(problem)
            knowledge = NodeKnowledge(store.load_dag(cache=2048), trusted)
            store_derived(knowledge, store)
        except StoreError as error:
            _fail(str(error))

        def indexed(record: Experiment | Transcript) -> None:  # the loop stored it
            knowledge.dag.add(record)

        def step(done: Step, summary: LoopSummary) -> None:
            progress.step(done, summary)
            if done.iteration % CURATE_EVERY == 0:
                knowledge.curate()

        loop = ResearchLoop(
            problem,
            evaluation_for(problem, evaluator, gateway),
            chosen,
            store,
            config,
            on_step=step,
            on_mutator_failure=progress.mutator_failure,
            on_record=indexed,
            trusted=trusted,
            knowledge=functools.partial(knowledge.for_problem, problem.id),
            spent=functools.partial(budget_spent, gateway),
        )

        async def main() -> LoopSummary:
            try:
                if not dashboard:
                    return await loop.run()
                from node.cli.dashboard import me_of, run_with_dashboard
                from node.web import DashboardSource

                source = DashboardSource(store=lambda: store, me=me_of(_data_dir(data_dir)))
                return await run_with_dashboard(source, dashboard_port, loop.run)
            finally:
                if close is not None:
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        await close()

        interrupted, failure = False, ""
        try:
            with progress:
                summary = trio.run(main)
        except* KeyboardInterrupt:  # trio may deliver it inside an exception group
            interrupted = True
        except* StoreError as group:  # damaged, locked by another process, disk full
            failure = str(group.exceptions[0])
        except* DashboardError as group:  # its port is taken
            failure = str(group.exceptions[0])
        if not failure:
            try:
                store_derived(knowledge, store)
            except StoreError as error:
                failure = str(error)
        if failure:
            _fail(failure)
        if interrupted:
            runtime.ticker.interrupt_all()
            if loop.summary is not None:
                _print_summary(loop.summary, as_json, package)
            err.print("[yellow]interrupted[/]: every finished attempt is recorded.")
            raise typer.Exit(EXIT_INTERRUPTED)
    if loop.spent_reason is not None and not as_json:  # --max-tokens / --max-cost reached
        err.print(f"[yellow]stopped[/]: {inline(loop.spent_reason)}", highlight=False)
    if as_json:
        _print_json(summary_json(summary))
    else:
        _print_summary(summary, as_json, package)
        if gateway is not None:  # the evaluations' model calls (the mutator's are above)
            out.print(f"evaluations' {usage_text(gateway.usage)}", highlight=False)
    if summary.best_score is None:  # not even the baseline scored: a failed run, not a result
        _fail(f"no evaluation succeeded (the baseline and {summary.iterations} attempt(s) all "
              f"failed); `swarm eval {package}` shows why")


def _print_summary(summary: LoopSummary, as_json: bool, package: Path) -> None:
    from node.report import summary_json

    if as_json:
        _print_json(summary_json(summary))
        return
    arrow = "↑" if summary.direction == "maximize" else "↓"
    target = "" if summary.target is None else f" (target {_fmt(summary.target)})"
    out.print(
        f"[bold]{inline(summary.problem_name)}[/] {arrow} "
        f"baseline {_fmt(summary.baseline_score)} → "
        f"best [bold green]{_fmt(summary.best_score)}[/]{target}",
        highlight=False,
    )
    tokens = summary.usage.input_tokens + summary.usage.output_tokens
    spend = f", {tokens} tokens (${summary.usage.cost_usd:.4f})" if tokens else ""
    drifts = f", {summary.drifts} drifts" if summary.drifts else ""
    out.print(
        f"{summary.iterations} iterations ({summary.evaluations} distinct evaluations, "
        f"{summary.repeats} repeats, {summary.redrawn} redrawn), {summary.kept} kept{drifts}, "
        f"{summary.mutator_failures} failed proposals, fuel {summary.evaluation_fuel:,}{spend}; "
        f"stopped: {summary.stop_reason.replace('_', ' ')}",
        highlight=False,
    )
    if summary.best_experiment:
        out.print(
            f"best experiment: {summary.best_experiment[:10]} "
            f"(`swarm log {package}` shows the changelog)",
            highlight=False,
        )


class _Progress:
    """A live progress line for `swarm run`: iteration, best score, last change, fuel, tokens."""

    def __init__(self, problem: Problem, total: int, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.enabled = enabled
        self.problem = problem
        self.model_usage: UsageLine | None = None  # a package that asks a model
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            console=err,
            transient=True,
            disable=not enabled,
        )
        self.task = self.progress.add_task(inline(problem.name), total=total,
                                           status="baseline...")

    def __enter__(self) -> _Progress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def step(self, step: Step, summary: LoopSummary) -> None:
        if not self.enabled:
            return
        tokens = summary.usage.input_tokens + summary.usage.output_tokens
        status = (
            f"best {_fmt(summary.best_score)} | last: {_kind(step)} "
            f"{step.status} | fuel {summary.fuel_spent:,}"
            + (f" | tokens {tokens:,}" if tokens else "")
            + (f" | {self.model_usage.since_last()}" if self.model_usage else "")
        )
        self.progress.update(self.task, advance=1, status=status)
        if step.status in ("keep", "drift"):
            self.progress.console.print(
                ("[green]keep[/] " if step.status == "keep" else "[cyan]drift[/] ")
                + f"#{step.iteration:<4} {_fmt(step.score):>10}  "
                f"{_kind(step)}: {inline(step.description)}"
                + (f"\n       noise gate: {inline(step.gate)}" if step.gate else ""),
                highlight=False,
            )

    def mutator_failure(self, reason: str) -> None:
        if self.enabled:
            self.progress.console.print(f"[yellow]proposal failed[/]: {markup(reason)}",
                                        highlight=False)


def _kind(step: Step) -> str:
    """The mutation kind, with the operator family it came from when one was chosen."""
    return inline(step.mutation_kind) + (f" ({inline(step.family)})" if step.family else "")
