"""Plain English → a validated experiment package: a chat model writes the files, dry runs in the
sandbox judge them, and every failure goes back to the model for repair, a bounded number of
times."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from string import Template

import trio

from node.llm import (
    BudgetMeter,
    ChatClient,
    ChatMessage,
    ChatReply,
    LLMBudgetExceeded,
    LLMError,
    Usage,
    closed_blocks,
    data_block,
    inert,
    load_prompt,
)
from node.problem import PackageError, load_package
from node.publish.validate import Progress, Validation, validate_problem
from research_dag import MAX_PACKAGE_BYTES, PathError, Problem, check_package_path
from sandbox import Runtime

MAX_FILES = 256
MAX_STATEMENT = 2_000
MAX_FINDINGS = 32  # a failed attempt's findings shown to the model for repair
MAX_FINDING = 1_000  # characters of each
# What `swarm init` copies for people who write a package by hand instead of posing one.
PACKAGE_TEMPLATE = Path(__file__).parent / "templates" / "package"
# A block's opening tag; its body runs to the next `</file>` (node.llm.closed_blocks).
_FILE_OPENING = re.compile(r'<file\s+path\s*=\s*"(?P<path>[^"\n]{1,300})"\s*>\n?')
_FILE_CLOSING = "</file>"
_DELETE = re.compile(r'<delete\s+path\s*=\s*"(?P<path>[^"\n]{1,300})"\s*/?>')
_FENCE = re.compile(r"\A```[\w+-]*\n(?P<inner>.*?)\n?```\s*\Z", re.DOTALL)


@dataclass(frozen=True)
class PoseConfig:
    attempts: int = 4  # the first package and up to three repairs
    max_tokens: int = 16_000  # per reply: a package with its data is long

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 20 or self.max_tokens < 1_000:
            raise ValueError("PoseConfig needs 1 <= attempts <= 20 and max_tokens >= 1000")


@dataclass(frozen=True)
class Attempt:
    number: int
    changed: list[str]  # files written or deleted by this reply
    failures: list[str]  # empty: the package passed
    usage: Usage


@dataclass
class PoseResult:
    """What a pose produced: the package and its validation, or why there is none."""

    statement: str
    attempts: list[Attempt] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    problem: Problem | None = None
    validation: Validation | None = None
    stopped: str = ""  # why it gave up early (provider error, budget), if it did
    spent: Usage = field(default_factory=Usage)

    @property
    def ok(self) -> bool:
        return self.problem is not None and self.validation is not None and self.validation.ok

    def report(self) -> str:
        """Why no package was accepted, for a person: one line per attempt's failures."""
        lines = []
        for attempt in self.attempts:
            lines.append(f"attempt {attempt.number}:")
            lines += [f"  - {failure}" for failure in attempt.failures]
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        return "\n".join(lines)


class ReplyError(ValueError):
    """A reply that is not a usable set of files; the message is fed back to the model."""


def parse_reply(text: str) -> tuple[dict[str, bytes], list[str]]:
    """The files a reply writes and the paths it deletes. Raises ReplyError."""
    files: dict[str, bytes] = {}
    for opening, body in closed_blocks(text, _FILE_OPENING, _FILE_CLOSING):
        path = check_path(opening["path"])
        fenced = _FENCE.match(body.strip("\n"))
        if fenced is not None:  # models like to wrap code in fences even when told not to
            body = fenced["inner"] + "\n"
        try:
            files[path] = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, from a JSON "\ud800" escape
            raise ReplyError(f"{path} is not valid Unicode text") from None
    deletes = [check_path(m["path"]) for m in _DELETE.finditer(text)]
    if not files and not deletes:
        raise ReplyError(
            'the reply contains no <file path="..."> blocks: reply with the files only'
        )
    if len(files) > MAX_FILES:
        raise ReplyError(f"the reply has {len(files)} files; at most {MAX_FILES}")
    return files, deletes


def check_path(raw: str) -> str:
    """A package-relative path the package may contain, or ReplyError."""
    try:
        path = PurePosixPath(check_package_path(raw.strip()))
    except PathError as error:
        raise ReplyError(f"{raw!r:.80} is not a package-relative path: {error}") from None
    parts = path.parts
    allowed = (
        str(path) == "problem.toml"
        or (len(parts) == 1 and path.suffix == ".py")
        or (len(parts) >= 3 and parts[0] == "data" and parts[1] in ("public", "private"))
    )
    if not allowed:
        raise ReplyError(
            f"{raw!r} is not allowed: use problem.toml, top-level .py files, "
            "data/public/... and data/private/..."
        )
    return str(path)


def write_package(files: Mapping[str, bytes], directory: Path) -> None:
    """Write a package into `directory` (new or empty), whole or not at all."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise FileExistsError(f"{directory} exists and is not an empty directory")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for path, content in files.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if directory.exists():
            directory.rmdir()
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _load(files: Mapping[str, bytes]) -> Problem:
    """Load files as a package through the same loader `swarm pose --from` uses."""
    with tempfile.TemporaryDirectory(prefix="swarm-pose-") as staging:
        root = Path(staging) / "package"
        write_package(files, root)
        return load_package(root)


def findings(failures: list[str]) -> str:
    """A failed attempt's findings for the repair prompt, as one data block: they quote what the
    package printed (its evaluator's stderr) and the paths the reply named."""
    lines = [f"- {inert(failure, MAX_FINDING, one_line=True)}"
             for failure in failures[:MAX_FINDINGS]]
    if len(failures) > MAX_FINDINGS:
        lines.append(f"- and {len(failures) - MAX_FINDINGS} more")
    return data_block("\n".join(lines), "the validator's findings")


class Poser:
    """Asks a chat model for a package and repairs it until it validates or attempts run out."""

    def __init__(
        self,
        client: ChatClient,
        meter: BudgetMeter,
        runtime: Runtime,
        config: PoseConfig | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.meter = meter
        self.runtime = runtime
        self.config = config or PoseConfig()
        self.progress = progress
        self._system = load_prompt("pose_system.md")
        self._user = Template(load_prompt("pose_user.md"))
        self._repair = Template(load_prompt("pose_repair.md"))

    def _say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    async def pose(self, statement: str) -> PoseResult:
        statement = " ".join(statement.split())
        if not statement or len(statement) > MAX_STATEMENT:
            raise ValueError(f"the problem statement must be 1 to {MAX_STATEMENT} characters")
        result = PoseResult(statement)
        shown = data_block(inert(statement, MAX_STATEMENT, one_line=True),
                           "the problem statement, as the person posing it wrote it")
        messages = [ChatMessage("user", self._user.substitute(statement=shown))]
        for number in range(1, self.config.attempts + 1):
            try:
                self.meter.check()
            except LLMBudgetExceeded as error:
                result.stopped = str(error)
                break
            self._say(f"asking {self.client.name} for the package (attempt {number} of "
                      f"{self.config.attempts})")
            try:
                reply = await self.client.complete(self._system, messages, self.config.max_tokens)
            except LLMError as error:
                self.meter.add(error.usage)
                result.spent = result.spent + error.usage
                tries = f" after {error.attempts} tries" if error.attempts > 1 else ""
                result.stopped = f"{self.client.name}: {error}{tries}"
                break
            self.meter.add(reply.usage)
            result.spent = result.spent + reply.usage
            messages.append(ChatMessage("assistant", reply.text))
            changed, failures = await self._judge(result, reply)
            result.attempts.append(Attempt(number, changed, failures, reply.usage))
            if not failures:
                return result
            for failure in failures:
                self._say(f"attempt {number} failed: {failure}")
            messages.append(ChatMessage("user", self._repair.substitute(
                attempt=number, attempts=self.config.attempts, failures=findings(failures))))
        return result

    async def _judge(
        self, result: PoseResult, reply: ChatReply
    ) -> tuple[list[str], list[str]]:
        """Apply the reply to the package and validate it: (changed paths, failures)."""
        result.problem, result.validation = None, None
        if reply.stop_reason == "max_tokens":
            return [], [
                f"reply: cut off at the {self.config.max_tokens}-token limit; send fewer or "
                "smaller files (less inline data, or fewer rows)"
            ]
        try:
            written, deleted = parse_reply(reply.text)
        except ReplyError as error:
            return [], [f"reply: {error}"]
        files = {p: c for p, c in result.files.items() if p not in deleted}
        files.update(written)
        result.files = files
        changed = sorted({*written, *deleted})
        size = sum(len(content) for content in files.values())
        if size > MAX_PACKAGE_BYTES:
            return changed, [f"size: the package is {size:,} bytes; keep it under 200 KB"]
        if len(files) > MAX_FILES:
            return changed, [f"size: the package has {len(files)} files; at most {MAX_FILES}"]
        try:
            problem = _load(files)
        except PackageError as error:
            return changed, [f"load: {defect}" for defect in error.defects]
        self._say(f"validating {problem.name} in the sandbox")
        validation = await trio.to_thread.run_sync(
            validate_problem, self.runtime, problem, self.progress, abandon_on_cancel=True
        )
        result.problem, result.validation = problem, validation
        return changed, [f"{check.name}: {check.message}" for check in validation.failures]
