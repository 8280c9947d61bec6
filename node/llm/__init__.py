"""Chat models: the contract every client meets (config, errors, budgets, retries, prompts) and
the Anthropic and OpenAI-compatible clients; anthropic itself loads only when a client is built."""

from node.llm.chat import (
    BudgetMeter,
    ChatClient,
    ChatMessage,
    ChatReply,
    LLMAuthError,
    LLMBadReply,
    LLMBadRequest,
    LLMBudgetExceeded,
    LLMConfig,
    LLMError,
    LLMNotConfigured,
    LLMRateLimited,
    LLMRefused,
    LLMTimeout,
    LLMUnavailable,
    Provider,
    Usage,
    load_prompt,
)
from node.llm.clients import AnthropicClient, OpenAICompatibleClient, open_client

__all__ = [
    "AnthropicClient",
    "BudgetMeter",
    "ChatClient",
    "ChatMessage",
    "ChatReply",
    "LLMAuthError",
    "LLMBadReply",
    "LLMBadRequest",
    "LLMBudgetExceeded",
    "LLMConfig",
    "LLMError",
    "LLMNotConfigured",
    "LLMRateLimited",
    "LLMRefused",
    "LLMTimeout",
    "LLMUnavailable",
    "OpenAICompatibleClient",
    "Provider",
    "Usage",
    "load_prompt",
    "open_client",
]
