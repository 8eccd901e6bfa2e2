"""Embedding and token counting through the engines that serve `GATEWAY_EMBEDDING_MODEL`.

The same engines and balancing as the proxy (registry + balancer), called directly.
Admission and metering against the key that caused a call are gateway.rag.metering's:
every embedding goes through it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from gateway.errors import GatewayError, UpstreamUnavailable
from gateway.services import Services
from gateway.upstream.balancer import choose
from gateway.upstream.client import upstream_headers
from gateway.upstream.registry import Upstream

log = logging.getLogger("gateway.rag")


class EmbeddingFailed(GatewayError):
    """The engine refused or failed; `retryable` tells a transient failure from a bad input."""

    status = 502
    type = "server_error"
    code = "embedding_failed"
    engine_status: int | None = None  # what the engine answered, when it answered


class NoEmbeddingModel(GatewayError):
    status = 503
    type = "server_error"
    code = "embedding_model_not_configured"


@dataclass(frozen=True, slots=True)
class Embedded:
    vectors: list[list[float]]
    prompt_tokens: int | None  # as the engine reports them
    upstream: str


def embedding_model(services: Services) -> str:
    """The configured embedding model, as requested (an alias or a served id)."""
    return _model(services)


def _model(services: Services) -> str:
    model = services.settings.embedding_model
    if not model:
        raise NoEmbeddingModel(
            "Retrieval needs an embedding model: set GATEWAY_EMBEDDING_MODEL on the gateway."
        )
    return model


def _pick(services: Services) -> tuple[str, Upstream]:
    served, upstreams = services.registry.candidates(_model(services))
    upstream = choose(upstreams)
    if upstream is None:
        raise UpstreamUnavailable(
            f"No healthy engine serves the embedding model `{served}` right now."
        )
    return served, upstream


def max_input_tokens(services: Services) -> int | None:
    """The embedding model's context length as its engine reports it (vLLM's card)."""
    try:
        _, upstreams = services.registry.candidates(_model(services))
    except GatewayError:
        return None
    for upstream in upstreams:
        card = upstream.models.get(services.registry.served_id(_model(services)), {})
        value = card.get("max_model_len")
        if isinstance(value, int) and value > 0:
            return value
    return None


async def _post(
    services: Services, path: str, body: dict[str, Any], request_id: str | None = None
) -> tuple[int, Any, str]:
    served, upstream = _pick(services)
    body = {**body, "model": served}
    headers = upstream_headers(services.settings, request_id or "rag-" + uuid.uuid4().hex[:16])
    upstream.in_flight += 1
    try:
        async with services.session.post(
            upstream.url + path, data=orjson.dumps(body), headers=headers
        ) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise EmbeddingFailed(
            f"The embedding engine at {upstream.url} is unreachable ({type(exc).__name__})."
        ) from exc
    finally:
        upstream.in_flight -= 1
    try:
        payload = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        payload = None
    return status, payload, upstream.url


async def embed(services: Services, texts: list[str], request_id: str | None = None) -> Embedded:
    """One vector per text, in order. Unmetered: callers go through gateway.rag.metering."""
    if not texts:
        return Embedded([], 0, "")
    body: dict[str, Any] = {"input": texts, "encoding_format": "float"}
    limit = max_input_tokens(services)
    if limit is not None:
        # vLLM-only field: truncate rather than refuse a chunk the estimate let run long.
        body["truncate_prompt_tokens"] = limit
    status, payload, upstream = await _post(services, "/v1/embeddings", body, request_id)
    if status != 200 or not isinstance(payload, dict):
        error = EmbeddingFailed(f"The embedding engine answered {status}: {_message(payload)}")
        error.retryable = status >= 500 or status in (408, 429)
        error.engine_status = status
        raise error
    data = sorted(payload.get("data") or [], key=lambda item: item.get("index", 0))
    vectors = [item.get("embedding") for item in data]
    if len(vectors) != len(texts) or not all(isinstance(v, list) and v for v in vectors):
        raise EmbeddingFailed("The embedding engine returned a malformed answer.")
    usage = payload.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return Embedded(vectors, tokens if isinstance(tokens, int) else None, upstream)


async def count_tokens(services: Services, text: str) -> int | None:
    """Tokens in `text` by the embedding model's own tokenizer (vLLM's `/tokenize`), or
    None where the engine has no such route."""
    try:
        status, payload, _ = await _post(services, "/tokenize", {"prompt": text})
    except GatewayError:
        return None
    if status != 200 or not isinstance(payload, dict):
        return None
    count = payload.get("count")
    if isinstance(count, int):
        return count
    tokens = payload.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None


def _message(payload: Any) -> str:
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if payload.get("message"):
            return str(payload["message"])[:300]
    return "no details"
