"""Embeddings the gateway asks for on a key's behalf, admitted and metered as that key's.

Every embedding reaches the engine through `embed_for`, which passes the proxy's guard
(gateway.admission.guard) for the key that caused it: the key's models must include the
embedding model (403 `model_not_allowed` otherwise), its quota and its rpm, tpm and
max_parallel limits apply, and the call ends as a usage event on the embedding model
with the engine's token count:

    what caused it                      whose key                 usage event's route
    POST /v1/vector_stores/{id}/search  the searching key         SEARCH_ROUTE
    chat or Responses with file_search  the request's key         the request's route
    ingesting a file into a store       the key that attached it  INGEST_ROUTE

An embedding made within a chat request counts only its tokens: the chat request holds
the request (rpm) and the in-flight slot already. A refusal (403, 429) is a usage event
only where the client gets it as the answer, a search: a chat request records its own,
and ingestion waits out a rate limit rather than answer anyone. The admin key is
unlimited and metered as `admin`, as on the proxied routes.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from gateway.admission.guard import Pass
from gateway.errors import EmbeddingFailed, GatewayError, PermissionDenied
from gateway.keys.record import KeyRecord
from gateway.rag.embeddings import embed, embedding_model
from gateway.rag.resources import Retrieval
from gateway.upstream.relay import RelayResult
from gateway.usage import event_from_request

SEARCH_ROUTE = "/v1/vector_stores/{vector_store_id}/search"
INGEST_ROUTE = "/v1/vector_stores/{vector_store_id}/files"
# Without a count from the engine, the reservation's estimate stands in (bytes / 4).
_BYTES_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class Payer:
    key: KeyRecord | None  # None only when the gateway runs open: nothing to admit or meter
    route: str
    request_id: str
    within_request: bool = False  # part of a client request that holds its rpm and slot
    answers_client: bool = False  # a refusal is the answer (and so a usage event)


def embedding_not_allowed(model: str) -> PermissionDenied:
    return PermissionDenied(
        f"This API key is not allowed to use the embedding model `{model}`, which retrieval "
        "needs (search, file_search and ingestion embed with it). Ask the gateway's operator "
        "to add it to the key's models.",
        code="model_not_allowed",
    )


def check_embedding_access(rag: Retrieval, key: KeyRecord | None) -> str:
    """The served embedding model, if `key` may use it; PermissionDenied if not."""
    model = embedding_model(rag)
    served = rag.engines.registry.served_id(model)
    if key is not None and not key.allows(served):
        raise embedding_not_allowed(model)
    return served


async def embed_for(rag: Retrieval, payer: Payer, texts: list[str]) -> list[list[float]]:
    """One vector per text, admitted and metered for `payer`; raises the guard's 403/429s
    and embeddings' EmbeddingFailed/UpstreamUnavailable."""
    started = time.perf_counter()
    size = sum(len(t.encode()) for t in texts)
    model = embedding_model(rag)
    served = rag.engines.registry.served_id(model)
    result = RelayResult()
    granted: Pass | None = None
    try:
        if payer.key is not None and not payer.key.allows(served):
            raise embedding_not_allowed(model)
        granted = await rag.guard.admit_internal(
            payer.key, size, within_request=payer.within_request
        )
        # Unique upstream: one client id may cause several calls at once (vLLM keys its
        # requests by this id), and an ingestion makes one per batch.
        upstream_id = f"{payer.request_id}-{uuid.uuid4().hex[:8]}"
        embedded = await embed(rag, texts, upstream_id)
        tokens = embedded.prompt_tokens
        if tokens is None:
            tokens = size // _BYTES_PER_TOKEN
        result = RelayResult(embedded.upstream, 200, tokens, 0, dispatched=True)
        if tokens:
            rag.metrics.tokens.labels(served, "prompt").inc(tokens)
        return embedded.vectors
    except EmbeddingFailed as exc:
        result = RelayResult(status=exc.engine_status or exc.status)
        raise
    except GatewayError as exc:
        result = RelayResult(status=exc.status)
        raise
    finally:
        if granted is not None:
            await rag.guard.settle(granted, result)
        if granted is not None or payer.answers_client:
            _record(rag, payer, served, started, result)


def _record(rag: Retrieval, payer: Payer, model: str, started: float, result: RelayResult) -> None:
    if payer.key is None:
        return
    rag.guard.record(
        event_from_request(
            request_id=payer.request_id,
            key_id=payer.key.id,
            model=model,
            route=payer.route,
            started=started,
            status=result.status or 499,
            upstream=result.upstream,
            prompt_tokens=result.prompt_tokens or 0,
            completion_tokens=0,
        )
    )
