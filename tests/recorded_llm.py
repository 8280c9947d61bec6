"""Recorded-looking Anthropic replies and a scripted in-memory HTTP transport for LLM tests."""

from __future__ import annotations

import json

import httpx
import trio

KEY = "sk-ant-api03-SECRETSECRETSECRET"


class Script:
    """A MockTransport handler that plays replies in order and records every request."""

    def __init__(self, *replies: httpx.Response) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.replies[min(len(self.requests), len(self.replies)) - 1]

    def prompt(self, index: int = -1) -> str:
        body = json.loads(self.requests[index].content)
        return "\n".join(message["content"] for message in body["messages"])


def message(
    text: str, stop_reason: str = "end_turn", tokens: tuple[int, int] = (2100, 180)
) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"request-id": "req_011CVmT9tE2NnNqXbA7h5kSq", "content-type": "application/json"},
        json={
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-5-5",
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": tokens[0],
                "output_tokens": tokens[1],
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        },
    )


def openai_completion(
    text: str, finish: str = "stop", tokens: tuple[int, int] = (1200, 300)
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
            "object": "chat.completion",
            "created": 1741570283,
            "model": "qwen2.5-coder:7b",
            "system_fingerprint": "fp_ollama",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": tokens[0],
                "completion_tokens": tokens[1],
                "total_tokens": sum(tokens),
            },
        },
    )


def status(code: int, kind: str, text: str, **headers: str) -> httpx.Response:
    body = {"type": "error", "error": {"type": kind, "message": text}}
    return httpx.Response(
        code, json=body, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


async def no_sleep(seconds: float) -> None:
    await trio.lowlevel.checkpoint()
