"""Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`), relayed to
vLLM's own implementation: Claude Code and the `anthropic` SDK against a local model.

The gateway does not translate anything: it checks what it needs (the model, for access
and routing; `max_tokens`, for the reservation), maps aliases (so `claude-*` names can
name the local model), passes `anthropic-version` and `anthropic-beta` on, and relays
the bytes. Errors here are Anthropic's shape and statuses (gateway.http.anthropic_errors).
`?beta=true`, which the SDK's beta client and Claude Code add, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI

from gateway.admission.cost import prompt_estimate
from gateway.api.guarded_route import Call, GuardedRoute, check_content_type, parse_json
from gateway.errors import InvalidRequest
from gateway.http.asgi import RawHeaders, Scope, read_body
from gateway.upstream.dialect import ANTHROPIC

MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
# The client's headers the engine sees too (vLLM ignores them today; a newer one may not).
_PASSED = (b"anthropic-version", b"anthropic-beta")


@dataclass(slots=True)
class MessagesRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int | None  # None for count_tokens: nothing is generated


def check_messages(body: Any, *, count_tokens: bool) -> MessagesRequest:
    """What the gateway itself needs of a Messages body; vLLM checks the rest (and answers
    in Anthropic's shape)."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required (a non-empty string).", param="model")
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("messages: Field required (an array).", param="messages")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean.", param="stream")
    if count_tokens:
        return MessagesRequest(body, model, False, None)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Field required (a positive integer).", param="max_tokens")
    return MessagesRequest(body, model, bool(stream), max_tokens)


def passed_headers(scope: Scope) -> RawHeaders:
    return [(name, value) for name, value in scope["headers"] if name in _PASSED]


class MessagesRoute(GuardedRoute):
    dialect = ANTHROPIC

    def __init__(self, api: FastAPI, path: str) -> None:
        super().__init__(api, path)
        self.count_tokens = path == COUNT_TOKENS

    async def _handle(self, call: Call) -> None:
        state, granted, scope = call.state, call.granted, call.scope
        check_content_type(scope)
        raw = await read_body(call.receive)
        checked = check_messages(parse_json(raw), count_tokens=self.count_tokens)
        self.identify_end_user(call, checked.body)
        model, candidates = self.route_model(call, checked.model)
        body = raw
        if model != checked.model:
            checked.body["model"] = model
            body = orjson.dumps(checked.body)
        if self.count_tokens:
            # Counting runs the tokenizer, not the model: a request (rpm, parallel, a
            # usage event) that costs no tokens.
            await state.guard.admit(granted, len(raw), 0, sequences=0, prompt_tokens=0)
        else:
            await state.guard.admit(
                granted, len(raw), checked.max_tokens, prompt_tokens=prompt_estimate(raw)
            )
        request = self.relay_request(
            call, body, model, stream=checked.stream, headers=passed_headers(scope)
        )
        await self.relay(call, request, candidates)
