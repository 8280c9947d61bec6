"""Model calls for runners and evaluators (runs inside the sandbox): `complete` and `judge`
cross to the node's model gateway through the runtime's door (`_host.call`), one JSON frame
each way (sandbox/model_door.py). The guest has no network; the host answers, counts every
call against the evaluation's limits, and records it in the evaluation's transcript."""

import json as _json

import _host

__all__ = ["ModelError", "ModelLimit", "complete", "judge"]


class ModelLimit(RuntimeError):
    """This evaluation's model budget is spent (calls, tokens) or a request is too large.

    The evaluation has failed already: the host records the failure whatever happens next."""


class ModelError(RuntimeError):
    """The gateway could not answer (no model offered, a provider failed)."""


def _ask(request):
    frame = _json.dumps(request, separators=(",", ":")).encode("utf-8")
    try:
        raw = _host.call(frame)
    except ConnectionRefusedError:
        raise ModelError("no model gateway is offered to this evaluation") from None
    except OSError:
        raise ModelError("the model gateway failed") from None
    answer = _json.loads(raw)
    error = answer.get("error")
    if error == "limit":
        raise ModelLimit(answer.get("message", "model limit"))
    if error is not None:
        raise ModelError(answer.get("message", "model error"))
    return answer


def _text(name, value):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def complete(system, user, max_tokens=512):
    """The model's reply to `user` under the `system` prompt, at most `max_tokens` long."""
    if type(max_tokens) is not int or max_tokens < 1:
        raise ValueError("max_tokens must be a positive int")
    request = {
        "kind": "complete",
        "system": _text("system", system),
        "user": _text("user", user),
        "max_tokens": max_tokens,
    }
    return _ask(request)["text"]


def judge(question, output):
    """The model's yes (True) or no (False) to `question` about `output`."""
    request = {
        "kind": "judge",
        "question": _text("question", question),
        "output": _text("output", output),
    }
    return _ask(request)["verdict"] is True
