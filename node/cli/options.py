"""What the `swarm` commands share: the console objects, exit codes, error printing, the
`Annotated` options several commands take, and turning those options into a data directory,
problem, runtime, mutator, store or identity (one red line and an exit code when that fails)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console

from node.untrusted_text import json_text, markup

if TYPE_CHECKING:
    from node.mutators import Mutator
    from node.store import RecordStore
    from research_dag import Problem
    from sandbox import Runtime

# No emoji codes: `:name:` in a peer's text must print as typed.
out = Console(emoji=False)
err = Console(stderr=True, emoji=False)

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
DATA_ENV = "SWARM_DATA_DIR"

PackageDir = Annotated[
    Path, typer.Argument(help="An experiment package directory (problem.toml, strategy.py, ...).")
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help=f"Where records are kept (default: ${DATA_ENV} or ~/.local/share/swarm)."
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one machine-readable JSON document.")]
Model = Annotated[str | None, typer.Option(help="LLM model name.")]
BaseUrl = Annotated[str | None, typer.Option(help="OpenAI-compatible base URL (Ollama, vLLM...).")]


def _budget(value: float | None) -> float | None:
    """A budget caps spending or is refused (exit 2): `--max-cost nan` parsed, and no spending
    is ever >= nan, so it capped nothing, silently; nor does a negative one."""
    if value is not None and not value >= 0:
        raise typer.BadParameter(f"must be a number >= 0, not {value}")
    return value


MaxTokens = Annotated[int | None, typer.Option(
    help="Token budget (input + output).", callback=_budget)]
MaxCost = Annotated[float | None, typer.Option(help="Money budget (USD).", callback=_budget)]
DashboardFlag = Annotated[bool, typer.Option(
    "--dashboard", help="Also serve the live dashboard from this process, on 127.0.0.1 "
    "(port: --dashboard-port).")]
DashboardPort = Annotated[int, typer.Option(
    "--dashboard-port", min=0, max=65535, help="The dashboard's port (0: any free one).")]
NoStop = Annotated[bool, typer.Option(
    "--no-stop", help="Spend the whole budget (iterations, rounds) even once the package's "
    "target is met: for equal-budget comparisons.")]
Bootstrap = Annotated[
    list[str] | None,
    typer.Option("--bootstrap", help="A peer's multiaddr (repeatable), e.g. /ip4/.../p2p/..."),
]


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    # Messages quote TOML tables ([budget]) and file contents: never rich markup.
    err.print(f"[bold red]error:[/] {markup(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _print_json(document: Any) -> None:
    """The only way a command prints --json: ASCII, so no peer's control or bidi character
    reaches the terminal raw."""
    out.print_json(json_text(document), ensure_ascii=True)


def _data_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "swarm"


def _load_problem(directory: Path) -> Problem:
    from node.problem import PackageError, load_package

    try:
        return load_package(directory)
    except PackageError as error:
        _fail(str(error), EXIT_USAGE)


@functools.cache  # one per process: `swarm pose` validates, then publishes, with the same one
def _runtime(quiet: bool) -> Runtime:
    from sandbox import RuntimeUnavailable, load_runtime

    def progress(message: str) -> None:
        if not quiet:
            err.print(f"[dim]{message}[/]", highlight=False)

    try:
        return load_runtime(progress=progress)
    except RuntimeUnavailable as error:
        _fail(str(error))


def _mutator(
    kind: str,
    model: str | None,
    base_url: str | None,
    max_tokens: int | None,
    max_cost: float | None,
) -> tuple[Mutator, Callable[[], Any] | None]:
    """The mutator and, for LLM ones, an async close function."""
    from node.mutators import OfflineMutator

    if kind == "offline":
        return OfflineMutator(), None
    provider: Literal["anthropic", "openai"]
    if kind == "anthropic":
        provider = "anthropic"
    elif kind == "openai":
        provider = "openai"
    else:
        _fail(f"unknown mutator {kind!r}: use offline, anthropic or openai", EXIT_USAGE)
    from dataclasses import replace

    from node.llm import BudgetMeter, LLMConfig, LLMNotConfigured, open_client
    from node.mutators import LLMMutator

    try:
        config = LLMConfig.from_env(provider, model=model, base_url=base_url)
    except LLMNotConfigured as error:
        _fail(str(error), EXIT_USAGE)
    if max_tokens is not None:
        config = replace(config, token_budget=max_tokens)
    if max_cost is not None:
        config = replace(config, money_budget_usd=max_cost)
    client = open_client(config)
    return LLMMutator(client, BudgetMeter(config)), client.aclose


def _find_problem(query: str, problems: list[Problem], where: Path) -> Problem | None:
    """The one problem `query` names among `problems`: a full id, an id prefix, a name, or an
    experiment package directory (the problem with its id, else the stored problems with its
    name and files: a posed copy has another id, its author's). Several: one line each, exit 2.
    None: a package directory that matches nothing stored (nothing recorded for it yet)."""
    from node.untrusted_text import inline

    package = Path(query)
    if (package / "problem.toml").is_file():
        own = _load_problem(package)
        exact = [p for p in problems if p.id == own.id]
        matches = exact or [p for p in problems if p.name == own.name and p.files == own.files]
        if not matches:
            return None
    else:
        exact = [p for p in problems if p.id == query]
        matches = exact or [
            p for p in problems if p.name == query or (len(query) >= 4 and p.id.startswith(query))
        ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        _fail(f"no problem matching {query!r} in {where} (give a name, an id prefix of 4+ hex "
              "characters, or a package directory)", EXIT_USAGE)
    err.print(f"[bold red]error:[/] {len(matches)} problems match {markup(repr(query))}; "
              "give an id prefix:", highlight=False, soft_wrap=True)
    for problem in sorted(matches, key=lambda p: p.id):
        err.print(f"  {problem.id[:16]}  {markup(inline(problem.name))}  by "
                  f"{markup(inline(problem.author[:20]))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def _fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.6g}"


def _open_store(data_dir: Path | None, ballast_bytes: int = 0) -> RecordStore:
    from node.store import RecordStore, StoreError

    try:
        return RecordStore.open(_data_dir(data_dir) / "records.sqlite",
                                ballast_bytes=ballast_bytes)
    except StoreError as error:
        _fail(str(error))


def _identity(data_dir: Path | None) -> Any:
    from node.identity import IdentityError, load_or_create

    try:
        return load_or_create(_data_dir(data_dir) / "identity.key")
    except IdentityError as error:
        _fail(str(error))
