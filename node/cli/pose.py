"""`swarm init` and `swarm pose`: scaffold a package, or have an LLM write one from plain
English, validate it with dry runs in the sandbox, and publish it.

Part of the CLI layer, node/cli/: the only modules that print for humans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from node.cli.options import (
    EXIT_USAGE,
    BaseUrl,
    Bootstrap,
    DataDir,
    JsonFlag,
    MaxCost,
    MaxTokens,
    Model,
    _data_dir,
    _fail,
    _fmt,
    _identity,
    _load_problem,
    _open_store,
    _print_json,
    _runtime,
    err,
    out,
)
from node.untrusted_text import inline, markup, visible

if TYPE_CHECKING:
    from node.llm import LLMConfig
    from node.publish import Validation
    from research_dag import Problem

POSE_WAIT_S = 20.0


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the package.")],
    template: Annotated[str, typer.Option(
        help="package (a Python strategy), skill (a SKILL.md a model follows) or heuristic "
        "(a function a fixed harness runs on instances drawn per candidate)")] = "package",
) -> None:
    """Scaffold an experiment package from a template, for people who write their own."""
    import shutil

    from node.publish import PACKAGE_TEMPLATE

    templates = sorted(p.name for p in PACKAGE_TEMPLATE.parent.iterdir() if p.is_dir())
    if template not in templates:
        _fail(f"no template '{inline(template)}'; choose one of: {', '.join(templates)}",
              EXIT_USAGE)
    source = PACKAGE_TEMPLATE.parent / template
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        _fail(f"{directory} exists and is not empty or not a directory; choose a new one",
              EXIT_USAGE)
    try:
        shutil.copytree(source, directory, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    except (OSError, shutil.Error) as error:
        _fail(f"cannot create {directory}: {error}")
    shown = markup(str(directory))
    files = ", ".join(sorted(p.name for p in source.iterdir() if p.is_file()))
    out.print(f"created {shown}: edit {files} and data/, "
              f"then `swarm eval {shown}` and `swarm pose --from {shown}`",
              highlight=False)


def pose(
    statement: Annotated[
        str | None, typer.Argument(help="A plain-English problem (needs an LLM).")
    ] = None,
    from_dir: Annotated[
        Path | None, typer.Option("--from", help="An experiment package directory to publish.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write the validated package here for review; don't publish."),
    ] = None,
    llm: Annotated[
        str, typer.Option(help="anthropic, openai, or auto (the first one configured).")
    ] = "auto",
    model: Model = None,
    base_url: BaseUrl = None,
    max_tokens: MaxTokens = None,
    max_cost: MaxCost = None,
    attempts: Annotated[
        int, typer.Option(min=1, max=20, help="Packages the model may write (1 + repairs).")
    ] = 4,
    bootstrap: Bootstrap = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Validate a package with dry runs in the sandbox, then publish it to the swarm.

    With a plain-English STATEMENT, an LLM writes the package first and repairs it until the
    dry runs pass."""
    from node.publish import validate_problem

    costs: dict[str, Any] = {}
    if from_dir is not None and statement:
        _fail("give either a plain-English problem or --from DIR, not both", EXIT_USAGE)
    if from_dir is None:
        problem, validation, written, costs = _pose_from_text(
            statement, out_dir, _PoseLLM(llm, model, base_url, max_tokens, max_cost, attempts),
            data_dir, as_json)
        if out_dir is not None:
            if as_json:
                _print_json({"written": str(out_dir), "name": problem.name,
                                           **validation.summary(), **costs})
            else:
                out.print(f"wrote [bold]{inline(problem.name)}[/] to {markup(str(out_dir))}: "
                          "review it, then "
                          f"`swarm pose --from {markup(str(out_dir))}` to publish",
                          highlight=False, soft_wrap=True)
            return
        if not as_json:
            out.print(f"saved the package to {markup(str(written))}", highlight=False,
                      soft_wrap=True)
    else:
        if out_dir is not None:
            _fail("--out goes with a plain-English problem (a --from package is already on disk)",
                  EXIT_USAGE)
        problem = _load_problem(from_dir)
        runtime = _runtime(quiet=as_json)
        with _PoseProgress(as_json) as progress:
            validation = validate_problem(runtime, problem, progress)
        if not validation.ok:
            for check in validation.failures:
                err.print(f"[red]✗[/] {inline(check.name)}: {markup(check.message)}",
                          highlight=False)
            _fail(f"{from_dir} is not fit to publish: {len(validation.failures)} check(s) "
                  "failed (above)")
    signed = _publish(problem, bootstrap, data_dir, quiet=as_json)
    summary = validation.summary()
    if as_json:
        _print_json({"problem": signed.id, "name": signed.name,
                                   "status": "ok", **summary, **costs})
        return
    out.print(f"dry runs: baseline score {_fmt(validation.baseline_score)}, fuel "
              f"{summary['fuel']:,} of {problem.budget.fuel:,} per phase, "
              f"{len(validation.checks)} checks passed ({validation.evaluations} evaluations)",
              highlight=False)
    out.print(f"posed [bold]{inline(signed.name)}[/]: {signed.id}", highlight=False, soft_wrap=True)


class _PoseProgress:
    """Pose progress on stderr: model attempts and failures as lines; the many dry runs as one
    live status line in a terminal (and not at all in a log)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.status = err.status("") if err.is_terminal and not quiet else None

    def __call__(self, message: str) -> None:  # called from the validation thread too
        if self.quiet:
            return
        if not message.startswith("dry run:"):
            err.print(visible(message), style="dim", highlight=False, markup=False,
                      soft_wrap=True)
        elif self.status is not None:
            self.status.update(markup(message))
            self.status.start()

    def __enter__(self) -> _PoseProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()


def _publish(
    problem: Problem, bootstrap: list[str] | None, data_dir: Path | None, quiet: bool
) -> Problem:
    """Sign and announce a validated problem; with peers, wait (bounded) until one has it."""
    import trio

    from node.net import NetworkError, open_libp2p_network
    from node.store import StoreError
    from node.swarm import NodeConfig, SwarmNode
    from sandbox import Evaluator

    runtime = _runtime(quiet=quiet)
    identity = _identity(data_dir)

    async def main() -> Problem:
        with _open_store(data_dir) as store, Evaluator(runtime, problem) as evaluator:
            async with open_libp2p_network(
                identity.private_key, listen="/ip4/127.0.0.1/tcp/0", bootstrap=bootstrap or ()
            ) as network:
                node = SwarmNode(identity, network, store, lambda p: evaluator.evaluate,
                                 _NoMutator(), NodeConfig(problems=()))
                async with trio.open_nursery() as nursery:
                    await nursery.start(node.serve)
                    signed = await node.pose(problem)
                    if bootstrap:  # stay until a peer has pulled it, within reason
                        with trio.move_on_after(POSE_WAIT_S):
                            while not node.sync.served(signed.id):
                                await trio.sleep(0.1)
                    nursery.cancel_scope.cancel()
                return signed

    try:
        return trio.run(main)
    except* (NetworkError, StoreError) as group:  # StoreError: a damaged or locked store
        _fail(str(group.exceptions[0]))


@dataclass(frozen=True)
class _PoseLLM:
    """The LLM flags of `swarm pose`."""

    provider: str
    model: str | None
    base_url: str | None
    max_tokens: int | None
    max_cost: float | None
    attempts: int


def _llm_config(flags: _PoseLLM) -> LLMConfig:
    """The configured model, or one line saying what to set (exit 2, nothing written)."""
    from dataclasses import replace

    from node.llm import LLMConfig, LLMNotConfigured

    providers: tuple[Literal["anthropic", "openai"], ...]
    if flags.provider == "auto":
        providers = ("anthropic", "openai")
    elif flags.provider in ("anthropic", "openai"):
        providers = (flags.provider,)  # type: ignore[assignment]  # checked on the line above
    else:
        _fail(f"unknown --llm {flags.provider!r}: use anthropic, openai or auto", EXIT_USAGE)
    config: LLMConfig | None = None
    for provider in providers:
        try:
            config = LLMConfig.from_env(provider, model=flags.model, base_url=flags.base_url)
            break
        except LLMNotConfigured:
            continue
    if config is None:
        _fail("posing from plain English needs an LLM: set ANTHROPIC_API_KEY (or "
              "OPENAI_BASE_URL and SWARM_LLM_MODEL for a local model), or write a package "
              "with `swarm init DIR` and publish it with `swarm pose --from DIR`", EXIT_USAGE)
    if flags.max_tokens is not None:
        config = replace(config, token_budget=flags.max_tokens)
    if flags.max_cost is not None:
        config = replace(config, money_budget_usd=flags.max_cost)
    return config


def _pose_from_text(
    statement: str | None,
    out_dir: Path | None,
    flags: _PoseLLM,
    data_dir: Path | None,
    as_json: bool,
) -> tuple[Problem, Validation, Path, dict[str, Any]]:
    """Have the model write and repair a package; write it to `out_dir` (or the data dir)."""
    import trio

    from node.llm import BudgetMeter, open_client
    from node.publish import PoseConfig, Poser, write_package

    if not statement or not statement.strip():
        _fail("give a plain-English problem or a package: swarm pose --from DIR", EXIT_USAGE)
    if out_dir is not None and out_dir.exists() and (
        not out_dir.is_dir() or any(out_dir.iterdir())
    ):
        _fail(f"{out_dir} exists and is not an empty directory; choose a new one", EXIT_USAGE)
    config = _llm_config(flags)
    runtime = _runtime(quiet=as_json)
    meter = BudgetMeter(config)

    async def main() -> Any:
        async with open_client(config) as client:
            poser = Poser(client, meter, runtime, PoseConfig(attempts=flags.attempts),
                          progress=progress)
            return await poser.pose(statement)

    try:
        with _PoseProgress(as_json) as progress:
            result = trio.run(main)
    except ValueError as error:  # the statement itself (too long)
        _fail(str(error), EXIT_USAGE)
    spent = result.spent
    cost = (f"{spent.input_tokens:,} tokens in, {spent.output_tokens:,} out, "
            f"~${spent.cost_usd:.4f} ({config.model}), {len(result.attempts)} attempt(s)")
    costs = {"tokens_in": spent.input_tokens, "tokens_out": spent.output_tokens,
             "cost_usd": spent.cost_usd, "model": config.model, "attempts": len(result.attempts)}
    if not result.ok:
        if as_json:
            _print_json({"ok": False, "report": result.report(), **costs})
        else:
            err.print(visible(result.report()), highlight=False, markup=False, soft_wrap=True)
            err.print(cost, style="dim", highlight=False, markup=False)
        _fail(f"no package passed validation ({result.stopped or 'attempts used up'}); "
              "nothing was written or published")
    if not as_json:
        err.print(cost, style="dim", highlight=False, markup=False)
    assert result.problem is not None and result.validation is not None
    target = out_dir or _free_dir(_data_dir(data_dir) / "posed" / _dir_name(result.problem.name))
    try:
        write_package(result.files, target)
    except OSError as error:
        _fail(f"cannot write the package to {target}: {error}")
    return result.problem, result.validation, target, costs


def _dir_name(problem_name: str) -> str:
    """A directory name made from a problem name a model wrote: '/', '..', a leading '-' or
    '.', control characters and the like never reach the filesystem."""
    from research_dag import PathError, check_mutable_path

    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", problem_name).strip(".-")[:56].rstrip(".-")
    try:  # the package path rules too: 'con' or 'nul.x' names a device on Windows
        return check_mutable_path(name or "problem")
    except PathError:
        return f"problem-{name}"


def _free_dir(base: Path) -> Path:
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


class _NoMutator:
    name = "none"

    async def propose(self, context: Any) -> Any:
        from node.mutators import MutationFailed

        raise MutationFailed("this node only poses", retryable=False)
