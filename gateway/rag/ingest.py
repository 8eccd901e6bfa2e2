"""One ingestion job: parse, chunk, embed in batches, store. Failures that retrying cannot
fix end the file `failed` with `last_error`; transient ones raise `Retry`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.errors import GatewayError, NotFound, UpstreamUnavailable
from gateway.rag import jobs
from gateway.rag.chunking import estimate_tokens
from gateway.rag.embeddings import EmbeddingFailed, count_tokens, embed, max_input_tokens
from gateway.rag.index import ensure_index
from gateway.rag.parsing import UnparsableFile, parse_document
from gateway.rag.splitting import chunk_text
from gateway.services import Services

log = logging.getLogger("gateway.rag")

# Calibrating the token estimate on a sample is enough: documents are fairly uniform.
_CALIBRATION_CHARS = 20_000
# Room for the special tokens the model adds, and for the estimate running a little long.
_LIMIT_SHARE = 0.9


class Retry(Exception):
    """A transient failure (engine down or loading, database hiccup): try again later."""


class Stopped(Exception):
    """The job is no longer ours (cancelled, detached, deleted)."""


async def calibration(services: Services, text: str) -> float:
    """Real tokens / estimated tokens on a sample, by the embedding model's tokenizer."""
    sample = text[:_CALIBRATION_CHARS]
    real = await count_tokens(services, sample)
    estimate = estimate_tokens(sample)
    if not real or estimate <= 0:
        return 1.0
    return real / estimate


async def ingest(
    services: Services,
    job: jobs.Job,
    me: str,
    known_dims: set[int],
    still_ours: Callable[[], bool] = lambda: True,
) -> int:
    """Process `job`; the number of chunks stored. Raises Retry or Stopped."""
    db = services.db
    assert db is not None
    loaded = await jobs.load_file(db, job.file_id)
    if loaded is None:
        raise Stopped
    filename, data = loaded
    try:
        text = await asyncio.to_thread(parse_document, filename, data)
    except UnparsableFile as exc:
        await jobs.fail(db, job, me, exc.code, exc.message)
        return 0
    del data
    try:
        limit = max_input_tokens(services)
        strategy = job.strategy.capped(int(limit * _LIMIT_SHARE) if limit else None)
        scale = await calibration(services, text)
        chunks = await asyncio.to_thread(chunk_text, text, strategy, scale)
        texts = [chunk.text for chunk in chunks]
        vectors = await _embed_all(services, texts, still_ours)
    except (UpstreamUnavailable, NotFound) as exc:
        raise Retry(exc.message) from exc
    except EmbeddingFailed as exc:
        if exc.retryable:
            raise Retry(exc.message) from exc
        await jobs.fail(db, job, me, "server_error", exc.message)
        return 0
    except GatewayError as exc:
        await jobs.fail(db, job, me, "server_error", exc.message)
        return 0
    if not texts:
        await jobs.fail(db, job, me, "invalid_file", f"{filename}: the file contains no text.")
        return 0
    dims = {len(v) for v in vectors}
    if len(dims) != 1:
        await jobs.fail(db, job, me, "server_error", "The engine returned mixed dimensions.")
        return 0
    await ensure_index(db, dims.pop(), known_dims)
    if not await jobs.complete(db, job, me, texts, vectors):
        raise Stopped
    return len(texts)


async def _embed_all(
    services: Services, texts: list[str], still_ours: Callable[[], bool]
) -> list[list[float]]:
    size = services.settings.embedding_batch_size
    vectors: list[list[float]] = []
    for start in range(0, len(texts), size):
        if not still_ours():
            raise Stopped
        vectors.extend(await embed(services, texts[start : start + size]))
    return vectors
