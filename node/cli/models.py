"""The model a package's runner and evaluator ask (`--eval-model`): the gateway a command's
evaluations go through, its budget (shared with an LLM mutator's, so `--max-cost` covers both),
and the calls, tokens and dollars `swarm run` shows per iteration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated

import typer

from node.cli.options import EXIT_USAGE, _fail

if TYPE_CHECKING:
    from node.llm import BudgetMeter, ModelGateway, RunUsage
    from research_dag import Outcome, Problem
    from sandbox import Evaluated, Evaluator

EvalModel = Annotated[str, typer.Option(
    "--eval-model",
    help="The model a package's runner and evaluator ask: standin (offline, deterministic; the "
    "default), anthropic or openai (model: --model or SWARM_LLM_MODEL; endpoint: --base-url or "
    "OPENAI_BASE_URL).")]


def open_gateway(
    kind: str,
    model: str | None,
    base_url: str | None,
    max_tokens: int | None,
    max_cost: float | None,
    meter: BudgetMeter | None = None,
    cache_entries: int | None = None,
) -> ModelGateway:
    """The gateway for `kind`; `meter` (an LLM mutator's) is shared, else one is made from the
    token and money budgets. `cache_entries`: the gateway's own cache (None: its default)."""
    from node.llm import (
        BudgetMeter,
        ChatProvider,
        LLMConfig,
        LLMNotConfigured,
        ModelGateway,
        ModelProvider,
        StandinProvider,
    )

    provider: ModelProvider
    if kind == "standin":
        provider = StandinProvider()
    elif kind in ("anthropic", "openai"):
        try:
            provider = ChatProvider(LLMConfig.from_env(
                "anthropic" if kind == "anthropic" else "openai", model=model, base_url=base_url))
        except LLMNotConfigured as error:
            _fail(f"{_unconfigured(str(error), kind)}, or use --eval-model standin (the offline "
                  "stand-in model)", EXIT_USAGE)
    else:
        _fail(f"unknown --eval-model {kind!r}: use standin, anthropic or openai", EXIT_USAGE)
    if meter is None and (max_tokens is not None or max_cost is not None):
        # The meter reads only the budgets: each reply states its own cost.
        meter = BudgetMeter(LLMConfig("openai", provider.model, token_budget=max_tokens,
                                      money_budget_usd=max_cost))
    if cache_entries is None:
        return ModelGateway(provider, meter)
    return ModelGateway(provider, meter, cache_entries=cache_entries)


def _unconfigured(message: str, kind: str) -> str:
    """The client's message, which names the LLM mutator and its way out (the offline one),
    said of `--eval-model` (whose way out is the stand-in model)."""
    if " is not set: " in message:  # "ANTHROPIC_API_KEY is not set: export it, or use the ..."
        return message.split(": ", 1)[0] + ": set it"
    return message.replace(f"the {kind} mutator", f"--eval-model {kind}")


def budget_spent(gateway: ModelGateway | None) -> str | None:
    """What says the run's `--max-tokens` / `--max-cost` is spent (the meter's own words), or
    None while some is left (or there is no budget)."""
    from node.llm import LLMBudgetExceeded

    if gateway is None or gateway.budget is None:
        return None
    try:
        gateway.budget.check()
    except LLMBudgetExceeded as error:
        return str(error)
    return None


def evaluation_for(
    problem: Problem, evaluator: Evaluator, gateway: ModelGateway | None
) -> Callable[[Mapping[str, str]], Outcome | Evaluated]:
    """What a loop calls to evaluate a candidate: through the gateway when the package asks a
    model (`[model]` in problem.toml), else the evaluator alone."""
    from node.model_evaluations import ModelEvaluations

    if gateway is None or problem.model is None:
        return evaluator.evaluate
    return ModelEvaluations(evaluator, problem, gateway)


def evaluate_once(
    problem: Problem, evaluator: Evaluator, gateway: ModelGateway | None,
    files: Mapping[str, str],
) -> Outcome:
    from sandbox import Evaluated

    done = evaluation_for(problem, evaluator, gateway)(files)
    return done.outcome if isinstance(done, Evaluated) else done


def usage_text(usage: RunUsage) -> str:
    cached = f", {usage.cached} from the cache" if usage.cached else ""
    return (f"model calls: {usage.calls} asked{cached}, {usage.tokens:,} tokens, "
            f"${usage.cost_usd:.4f}")


class UsageLine:
    """The gateway's calls, tokens and dollars since the last line."""

    def __init__(self, gateway: ModelGateway) -> None:
        self.gateway = gateway
        self._last = gateway.usage

    def since_last(self) -> str:
        from node.llm import RunUsage

        now, last = self.gateway.usage, self._last
        self._last = now
        return usage_text(RunUsage(
            now.calls - last.calls, now.cached - last.cached,
            now.input_tokens - last.input_tokens, now.output_tokens - last.output_tokens,
            now.cost_usd - last.cost_usd))
