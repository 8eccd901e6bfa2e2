"""`GET /v1/models` and `GET /v1/models/{id}`, with vLLM's model fields passed through
(Continue reads `max_model_len`; Open WebUI needs `data[].id` and a JSON content type)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import FastAPI

from gateway.admission.guard import visible
from gateway.errors import GatewayError, InvalidRequest, NotFound
from gateway.http.asgi import Receive, Scope, Send, send_bytes
from gateway.http.context import get_context
from gateway.http.errors import send_error
from gateway.state import state_of
from gateway.upstream.registry import Registry
from gateway.upstream.switching.controller import Switcher

PREFIX = "/v1/models"


def with_status(
    cards: dict[str, dict[str, Any]], registry: Registry, switcher: Switcher
) -> dict[str, dict[str, Any]]:
    """Grouped models carry `status` (awake|asleep|waking), a field OpenAI clients ignore;
    so do the LoRA adapters of a grouped engine, which sleep and wake with it."""
    statuses = {
        model: switcher.status(upstream)
        for upstream in registry.upstreams
        if upstream.group is not None
        for model in upstream.models
    }
    out: dict[str, dict[str, Any]] = {}
    for name, card in cards.items():
        status = statuses.get(registry.served_id(name))
        out[name] = card if status is None else {**card, "status": status}
    return out


class ModelsRoute:
    def __init__(self, api: FastAPI) -> None:
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = state_of(self.api.state)
        registry = state.engines.registry
        ctx = get_context(scope)
        path: str = scope["path"].rstrip("/")
        try:
            if scope["method"] != "GET":
                raise InvalidRequest("Use GET for /v1/models.")
            key = await state.guard.authenticate(scope)
            ctx.key_id = key.id if key else None
            # A key sees only the models it may use (aliases follow their target).
            cards = {
                name: card
                for name, card in registry.model_cards().items()
                if visible(key, registry.served_id(name))
            }
            if state.engines.switcher is not None:
                cards = with_status(cards, registry, state.engines.switcher)
            if path == PREFIX:
                ctx.route = PREFIX
                body = {"object": "list", "data": list(cards.values())}
            else:
                ctx.route = PREFIX + "/{model}"
                # Model ids contain slashes (`Qwen/Qwen2.5-32B-Instruct-AWQ`): take the rest.
                model_id = unquote(path[len(PREFIX) + 1 :])
                if model_id not in cards:
                    raise NotFound(
                        f"The model `{model_id}` does not exist or you do not have access to it.",
                        param="model",
                        code="model_not_found",
                    )
                body = cards[model_id]
        except GatewayError as exc:
            await send_error(send, exc)
            return
        await send_bytes(send, 200, orjson.dumps(body))
