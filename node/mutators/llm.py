"""The LLM mutator: show a model the problem and history, and turn its one diff into a Proposal."""

from __future__ import annotations

import re
from string import Template

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
from node.mutators.base import (
    MutationContext,
    MutationFailed,
    Proposal,
    applied_patterns,
    in_worker,
)
from node.mutators.patch import PatchError, apply_patch, make_diff
from node.mutators.text_prompt import render_failures
from playbook import PlannedChange
from research_dag import (
    AFFORDANCES,
    MAX_NAME,
    MAX_TEXT,
    OPERATIONS,
    Change,
    Experiment,
    Problem,
    parse_python,
)

MAX_RECENT = 8
STDERR_LINES = 12
MAX_KIND = 60
MAX_DESCRIPTION = 200
MAX_HYPOTHESIS = 1_000
MAX_FILE_CHARS = 256_000  # the bound research_dag puts on a strategy file and a diff
DEFAULT_KIND = "llm_edit"
MAX_CHANGES = 8  # research_dag's bound on Experiment.changes
MAX_PLAN_SITES = 12  # sites of a planned change named in the prompt
MAX_SHOWN = 1_000  # characters of a peer's description or hypothesis, a guidance line, a plan
MAX_STDERR_LINE = 300  # characters of each stderr line shown
MAX_CHANGE_LINE = 2 * MAX_KIND + MAX_NAME + 40  # characters of a `<changes>` line read
# `prune weight_vector strategy.py:WEIGHTS[3]`, also with `:` or `/` between the words, a
# leading bullet, or `at` before the site.
_CHANGE_LINE = re.compile(r"[-*\s]*([\w-]+)\s*[:/\s]\s*([\w-]+)(?:\s+at\s+|\s*[/\s]\s*)?(.*)")


class LLMMutator:
    """Asks a chat model for one change per call; every failure is a MutationFailed."""

    def __init__(
        self, client: ChatClient, meter: BudgetMeter, max_tokens: int = 4096
    ) -> None:
        self.client = client
        self.meter = meter
        self.name = client.name
        self.max_tokens = max_tokens
        self._system = Template(load_prompt("mutate_system.md")).substitute(
            operations=", ".join(OPERATIONS), affordances=", ".join(AFFORDANCES)
        )
        self._user = Template(load_prompt("mutate_user.md"))
        # A text strategy (a skill) gets its own prompts: what failed on which case, one edit.
        self._text_system = Template(load_prompt("mutate_text_system.md")).substitute(
            operations=", ".join(OPERATIONS), affordances=", ".join(AFFORDANCES)
        )
        self._text_user = Template(load_prompt("mutate_text_user.md"))

    async def propose(self, context: MutationContext) -> Proposal:
        try:
            self.meter.check()
        except LLMBudgetExceeded as error:
            raise MutationFailed(f"{self.name}: {error}", retryable=False) from None
        text = context.problem.runner is not None
        user = render_user_prompt(self._text_user if text else self._user, context)
        messages = [ChatMessage("user", user)]
        try:
            reply = await self.client.complete(
                self._text_system if text else self._system, messages, self.max_tokens
            )
        except LLMError as error:
            self.meter.add(error.usage)
            tries = f" (after {error.attempts} attempts)" if error.attempts > 1 else ""
            raise MutationFailed(
                f"{self.name}: {error}{tries}", usage=error.usage, retryable=error.retryable
            ) from None
        self.meter.add(reply.usage)
        # Applying, parsing and diffing a large strategy takes seconds: off the event loop.
        return await in_worker(parse_reply, reply, context)


def render_user_prompt(template: Template, context: MutationContext) -> str:
    """The user message: our words around data blocks (node.llm.prompt_data) holding whatever a
    stranger wrote (the problem, its metric's names, the files, the attempts, the playbook's
    guidance, a planned change, the failing cases), every such field made inert and bounded."""
    problem = context.problem
    best = "none yet" if context.best_score is None else f"{context.best_score:.6g}"
    guidance = "\n".join(f"- {inert(line, MAX_SHOWN, one_line=True)}" for line in context.guidance)
    structural = (
        "\n## Plateau\n\nRecent attempts found no improvement. Propose a bigger, structural "
        "change this time: a different algorithm or approach, not another small tweak.\n"
    )
    about = "the problem's name, entry point and statement, as its author wrote them"
    return template.substitute(
        problem=data_block(
            f"name: {inert(problem.name, MAX_NAME, one_line=True)}\n"
            f"entry point: {inert(problem.entry, MAX_NAME, one_line=True)}\n\n"
            f"{inert(problem.statement.strip(), MAX_TEXT)}",
            about,
        ),
        metric=data_block(_render_metric(problem), "the metric and checks the author named"),
        best_score=best,
        files="\n\n".join(
            data_block(text.rstrip("\n"), f"file {path}")
            for path, text in context.best_files.items()
        ),
        recent=_render_recent(context.recent[-MAX_RECENT:]),
        guidance="\n## Guidance from the swarm's playbook\n\n"
        f"{data_block(guidance, 'what worked before, quoting peers and problem authors')}\n"
        if guidance else "",
        structural=structural if context.structural and context.plan is None else "",
        plan="" if context.plan is None else _render_plan(context.plan),
        failures=data_block(render_failures(context), "failing checks and the model's outputs")
        if problem.runner is not None else "",
    )


def _render_plan(plan: PlannedChange) -> str:
    sites = [inert(site, MAX_NAME, one_line=True) for site in plan.sites[:MAX_PLAN_SITES]]
    where = " at one of the sites it names" if sites else ""
    body = "\n".join([f"hypothesis: {inert(plan.text, MAX_SHOWN, one_line=True)}",
                      *(f"site: {site}" for site in sites)])
    return (
        "\n## Planned change\n\nThis turn tests a hypothesis the swarm carried over from other "
        f"problems:\n\n{data_block(body, 'a hypothesis from the playbook')}\n\n"
        f"Make exactly this change and no other: `{plan.operation}` on the `{plan.affordance}`"
        f"{where}. Choose the one most likely to improve the score.\n"
    )


def _render_metric(problem: Problem) -> str:
    metric = problem.metric
    better = "higher" if metric.direction == "maximize" else "lower"
    name = inert(metric.name, MAX_NAME, one_line=True)
    lines = [f"`{name}`: {metric.direction} it ({better} is better)."]
    if metric.target is not None:
        lines.append(f"Target: {metric.target:.6g}.")
    if metric.source == "fuel":
        lines.append(
            "The score is the fuel (instructions) the strategy uses; "
            "the evaluator only checks that its output is valid."
        )
    if problem.checklist:
        checks = ", ".join(inert(check, MAX_NAME, one_line=True) for check in problem.checklist)
        lines.append(f"Checks the output must pass: {checks}.")
    budget = problem.budget
    lines.append(f"Each evaluation may use {budget.fuel:,} fuel and {budget.memory_mb} MB memory.")
    return "\n".join(lines)


def _render_recent(recent: tuple[Experiment, ...]) -> str:
    if not recent:
        return "None yet: this is the first attempt."
    blocks = []
    for number, attempt in enumerate(recent, 1):
        outcome = attempt.outcome
        score = "no score" if outcome.score is None else f"score {outcome.score:.6g}"
        kind = inert(attempt.mutation_kind, MAX_NAME, one_line=True)
        description = inert(attempt.description, MAX_SHOWN, one_line=True)
        lines = [
            f"{number}. {kind}: {description or '(no description)'}",
            f"   result: {outcome.status}, {score}",
        ]
        if attempt.hypothesis:
            lines.append(f"   hypothesis: {inert(attempt.hypothesis, MAX_SHOWN, one_line=True)}")
        tail = outcome.stderr_tail.strip().splitlines()[-STDERR_LINES:]
        if outcome.status != "ok" and tail:
            lines.append("   stderr (last lines):")
            lines.extend(f"       {inert(line, MAX_STDERR_LINE)}" for line in tail)
        blocks.append("\n".join(lines))
    return data_block("\n".join(blocks), "recent attempts, this node's and its peers'")


def parse_reply(reply: ChatReply, context: MutationContext) -> Proposal:
    """Turn a model's reply into a Proposal, or raise MutationFailed saying what was wrong."""
    usage = reply.usage
    if reply.stop_reason == "refusal":
        raise MutationFailed("the model refused to propose a change", usage)
    diff = _last_tag(reply.text, "diff")
    if diff is None:
        diff = _last_fenced_diff(reply.text)
    if diff is None:
        cut = " (the reply was cut off at max_tokens)" if reply.stop_reason == "max_tokens" else ""
        raise MutationFailed(f"the reply has no <diff> section{cut}", usage)
    diff = _strip_fence(diff)
    if not diff.strip():
        raise MutationFailed("the reply's diff is empty", usage)
    try:
        files = apply_patch(diff, context.best_files, context.problem.mutable)
    except PatchError as error:
        raise MutationFailed(f"the diff does not apply: {error}", usage) from None
    changed = [path for path, text in files.items() if text != context.best_files.get(path)]
    if not changed:
        raise MutationFailed("the diff changes nothing", usage)
    for path in changed:
        _check_source(path, files[path], usage)
    canonical = make_diff(context.best_files, files)
    if len(canonical) > MAX_FILE_CHARS:
        raise MutationFailed(f"the diff is longer than {MAX_FILE_CHARS} characters", usage)
    hypothesis = _one_line(_last_tag(reply.text, "hypothesis") or "", MAX_HYPOTHESIS)
    kind = normalise_kind(_last_tag(reply.text, "mutation_kind") or "")
    description = _one_line(_last_tag(reply.text, "description") or "", MAX_DESCRIPTION)
    changes = parse_changes(_last_tag(reply.text, "changes") or "")
    return Proposal(
        files=files,
        diff=canonical,
        mutation_kind=kind,
        description=description or hypothesis[:MAX_DESCRIPTION] or f"edit {', '.join(changed)}",
        hypothesis=hypothesis,
        usage=usage,
        changes=changes,
        applied=applied_patterns(context, changes),
        hypothesis_id=None if context.plan is None else context.plan.hypothesis_id,
    )


def parse_changes(section: str) -> tuple[Change, ...]:
    """The reply's `<changes>` lines in the shared vocabulary, at most MAX_CHANGES; a word
    outside it becomes `other` with the word kept in `note`; unreadable lines are skipped."""
    changes: list[Change] = []
    for line in section.strip().splitlines()[: 4 * MAX_CHANGES]:
        # Cut first: the pattern is quadratic in a line's length (a 16,000-dash line took 13 s),
        # and what it reads from a long line (two words, then a site cut to MAX_NAME) is here.
        found = _CHANGE_LINE.fullmatch(_printable(line[:MAX_CHANGE_LINE]).strip())
        if found is None:
            continue
        operation, affordance = (_word(found[1]), _word(found[2]))
        notes = [word for word in (operation, affordance) if word not in OPERATIONS + AFFORDANCES]
        site = found[3].strip().strip("`'\"")
        changes.append(Change.model_validate({
            "operation": operation if operation in OPERATIONS else "other",
            "affordance": affordance if affordance in AFFORDANCES else "other",
            "site": site[:MAX_NAME],
            "note": " ".join(note for note in notes if note)[:MAX_NAME],
        }))
        if len(changes) >= MAX_CHANGES:
            break
    return tuple(changes)


def _word(raw: str) -> str:
    return raw.strip().lower().replace("-", "_")[:MAX_KIND]


def _printable(text: str) -> str:
    return "".join(char if char.isprintable() else " " for char in text)


def _check_source(path: str, text: str, usage: Usage) -> None:
    if len(text) > MAX_FILE_CHARS:
        raise MutationFailed(f"{path} would be longer than {MAX_FILE_CHARS} characters", usage)
    if not path.endswith(".py"):
        return
    try:
        parse_python(text, filename=path)
    except SyntaxError as error:
        raise MutationFailed(
            f"the change breaks {path}: {error.msg} (line {error.lineno})", usage
        ) from None
    except ValueError as error:  # null bytes in the source
        raise MutationFailed(f"the change breaks {path}: {error}", usage) from None
    except (RecursionError, MemoryError):  # the parser's depth limits (issue 8, finding 8)
        raise MutationFailed(f"the change nests {path} too deeply to parse", usage) from None


def normalise_kind(raw: str) -> str:
    """snake_case, ASCII, at most MAX_KIND characters; DEFAULT_KIND when nothing is left."""
    kind = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", raw.strip())
    kind = re.sub(r"[^A-Za-z0-9]+", "_", kind).strip("_").lower()
    return kind[:MAX_KIND].rstrip("_") or DEFAULT_KIND


def _last_tag(text: str, tag: str) -> str | None:
    """What the last `<tag>...</tag>` holds (a model that drafts before answering puts its
    final answer last), found in linear time (`closed_blocks`)."""
    found = None
    for _, body in closed_blocks(text, re.compile(re.escape(f"<{tag}>")), f"</{tag}>"):
        found = body
    return found


_FENCED_DIFF = re.compile(r"```(?:diff|patch|udiff)")


def _last_fenced_diff(text: str) -> str | None:
    """The last fenced diff's body, as `re.findall(r"```(?:diff|patch|udiff)[^\\n]*\\n(.*?)```",
    DOTALL)[-1]` finds it, in linear time (as `_last_tag`)."""
    found, position = None, 0
    while (start := _FENCED_DIFF.search(text, position)) is not None:
        newline = text.find("\n", start.end())
        end = -1 if newline < 0 else text.find("```", newline + 1)
        if end < 0:
            break
        found, position = text[newline + 1 : end], end + 3
    return found


def _strip_fence(diff: str) -> str:
    body = diff.strip("\n")
    if body.startswith("```") and body.rstrip().endswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rstrip()[:-3]
    return body


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]
