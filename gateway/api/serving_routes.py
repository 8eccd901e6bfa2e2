"""vLLM's other serving routes, under the same keys, limits and metering as the OpenAI
ones, relayed as bytes:

    /tokenize /detokenize                  the model's tokenizer: a request, no tokens
    /pooling /classify /score /v1/score    pooling models: the prompt tokens vLLM reports
    /rerank /v1/rerank /v2/rerank          (Jina's and Cohere's rerank shapes)
    /v1/audio/transcriptions|translations  speech-to-text models, multipart forms

Which engine serves the model is found as for every route; vLLM serves each of these
only for some kinds of model, and its 404 for the others becomes a clear one
(`route_not_served`, gateway.upstream.relay).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from fastapi import FastAPI

from gateway.admission.cost import prompt_estimate
from gateway.api.audio_form import read_form, with_model
from gateway.api.guarded_route import Call, GuardedRoute, check_content_type, parse_json
from gateway.errors import InvalidRequest
from gateway.http.asgi import header, read_body
from gateway.upstream.dialect import OPENAI, Tokens

UNMETERED_PATHS = ("/tokenize", "/detokenize")
POOLING_PATHS = (
    "/pooling",
    "/classify",
    "/score",
    "/v1/score",
    "/rerank",
    "/v1/rerank",
    "/v2/rerank",
)
AUDIO_PATHS = ("/v1/audio/transcriptions", "/v1/audio/translations")
# Routes outside /v1 whose bodies the body limit treats as the OpenAI routes'.
JSON_PATHS = frozenset((*UNMETERED_PATHS, *POOLING_PATHS))


def audio_usage(body: bytes) -> Tokens | None:
    """vLLM reports a transcription's audio in seconds, not tokens: the audio costs no
    prompt tokens, and the transcript its size (as the gateway's prompt estimates)."""
    text: Any = body
    if body[:1] == b"{":  # json and verbose_json; text, srt and vtt come as they are
        try:
            text = orjson.loads(body).get("text", "")
        except (orjson.JSONDecodeError, AttributeError):
            return None
    if isinstance(text, str):
        text = text.encode()
    return 0, prompt_estimate(text) if isinstance(text, bytes) else 0


AUDIO = replace(OPENAI, name="audio", read_body=audio_usage)


class ServingRoute(GuardedRoute):
    """A JSON route: the body's `model` is checked and routed; the rest is vLLM's."""

    def __init__(self, api: FastAPI, path: str) -> None:
        super().__init__(api, path)
        self.dialect = OPENAI
        self.metered = path not in UNMETERED_PATHS

    async def _handle(self, call: Call) -> None:
        state, granted, scope = call.state, call.granted, call.scope
        check_content_type(scope)
        raw = await read_body(call.receive)
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        self.identify_end_user(call, body)
        requested = body.get("model")
        if not isinstance(requested, str) or not requested:
            # vLLM would pick its one model; behind the gateway the model names the engine.
            raise InvalidRequest("You must provide a model parameter (a string).", param="model")
        model, candidates = self.route_model(call, requested)
        if model != requested:
            body["model"] = model
            raw = orjson.dumps(body)
        # Nothing is generated; the prompt is charged as vLLM counts it. The tokenizer
        # routes run no model: a request (rpm, parallel, a usage event), no tokens.
        estimate = prompt_estimate(raw) if self.metered else 0
        await state.guard.admit(granted, len(raw), 0, sequences=0, prompt_tokens=estimate)
        request = self.relay_request(call, raw, model)
        await self.relay(call, request, candidates)


class AudioRoute(GuardedRoute):
    """Speech to text: a multipart form with the audio and a `model` field."""

    def __init__(self, api: FastAPI, path: str) -> None:
        super().__init__(api, path)
        self.dialect = AUDIO

    async def _handle(self, call: Call) -> None:
        state, granted, scope = call.state, call.granted, call.scope
        content_type = header(scope, b"content-type")
        raw = await read_body(call.receive)  # capped at GATEWAY_MAX_AUDIO_BYTES at the door
        form = read_form(raw, content_type)
        model, candidates = self.route_model(call, form.model)
        if model != form.model:
            raw = with_model(raw, form, model)
        # The audio is no text prompt; the transcript is reserved as any answer is.
        await state.guard.admit(granted, len(raw), None, prompt_tokens=0)
        request = self.relay_request(call, raw, model, stream=form.stream)
        # The form's own type: its boundary frames the body as sent.
        request.headers["content-type"] = (content_type or b"").decode("latin-1")
        await self.relay(call, request, candidates)


def serving_routes(api: FastAPI) -> dict[str, GuardedRoute]:
    routes: dict[str, GuardedRoute] = {p: ServingRoute(api, p) for p in JSON_PATHS}
    routes.update({p: AudioRoute(api, p) for p in AUDIO_PATHS})
    return routes
