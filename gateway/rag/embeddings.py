"""Embedding and token counting through the engines that serve `GATEWAY_EMBEDDING_MODEL`.

Through the one engine client (gateway.upstream.engines), as the proxy's requests go.
Admission and metering against the key that caused a call are gateway.rag.metering's:
every embedding goes through it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.errors import EmbeddingFailed, GatewayError, NoEmbeddingModel
from gateway.upstream.engines import Reply, engine_message

if TYPE_CHECKING:
    from gateway.rag.resources import Retrieval

log = logging.getLogger("gateway.rag")


@dataclass(frozen=True, slots=True)
class Embedded:
    vectors: list[list[float]]
    prompt_tokens: int | None  # as the engine reports them
    upstream: str


def embedding_model(rag: Retrieval) -> str:
    """The configured embedding model, as requested (an alias or a served id)."""
    model = rag.settings.embedding_model
    if not model:
        raise NoEmbeddingModel(
            "Retrieval needs an embedding model: set GATEWAY_EMBEDDING_MODEL on the gateway."
        )
    return model


def max_input_tokens(rag: Retrieval) -> int | None:
    """The embedding model's context length as its engine reports it (vLLM's card)."""
    return rag.engines.registry.max_model_len(embedding_model(rag))


async def _post(
    rag: Retrieval, path: str, body: dict[str, Any], request_id: str | None = None
) -> Reply:
    return await rag.engines.post_json(
        path,
        body,
        model=embedding_model(rag),
        request_id=request_id or "rag-" + uuid.uuid4().hex[:16],
    )


async def embed(rag: Retrieval, texts: list[str], request_id: str | None = None) -> Embedded:
    """One vector per text, in order. Unmetered: callers go through gateway.rag.metering."""
    if not texts:
        return Embedded([], 0, "")
    body: dict[str, Any] = {"input": texts, "encoding_format": "float"}
    limit = max_input_tokens(rag)
    if limit is not None:
        # vLLM-only field: truncate rather than refuse a chunk the estimate let run long.
        body["truncate_prompt_tokens"] = limit
    reply = await _post(rag, "/v1/embeddings", body, request_id)
    status, payload = reply.status, reply.payload
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
    return Embedded(vectors, tokens if isinstance(tokens, int) else None, reply.upstream)


async def count_tokens(rag: Retrieval, text: str) -> int | None:
    """Tokens in `text` by the embedding model's own tokenizer (vLLM's `/tokenize`), or
    None where the engine has no such route."""
    try:
        reply = await _post(rag, "/tokenize", {"prompt": text})
    except GatewayError:
        return None
    status, payload = reply.status, reply.payload
    if status != 200 or not isinstance(payload, dict):
        return None
    count = payload.get("count")
    if isinstance(count, int):
        return count
    tokens = payload.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None


def _message(payload: Any) -> str:
    return (engine_message(payload) or "no details")[:300]
