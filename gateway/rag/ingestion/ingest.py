"""One ingestion job, in memory that does not grow with the file.

The file is copied from Postgres to a spool file a part at a time; its text streams
(gateway.rag.ingestion.text_source: decoded as it goes, or parsed in the sandbox first)
through the chunker; chunks are embedded and staged a batch at a time
(gateway.rag.ingestion.ingest_run), and moved into place in the transaction that
completes the file (gateway.rag.ingestion.jobs).

The embedding is admitted and metered for the key that attached the file
(gateway.rag.metering). A rate-limited job waits and tries again; one whose key is out
of quota, revoked, expired, deleted or not allowed the embedding model ends `failed`
with a `last_error` that says so. So do other failures that retrying cannot fix;
transient ones raise `Retry`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import (
    EmbeddingFailed,
    GatewayError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RequestTooLarge,
    SpoolUnavailable,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.keys.auth import ADMIN
from gateway.keys.record import KeyRecord
from gateway.keys.store import KeyStore, to_record
from gateway.rag.index import ensure_index
from gateway.rag.ingestion import jobs
from gateway.rag.ingestion.file_store import spool_stored
from gateway.rag.ingestion.ingest_run import (
    ChunkOverLimit,
    MixedDimensions,
    Run,
    Stopped,
    TooManyChunks,
)
from gateway.rag.ingestion.parsing import UnparsableFile, no_text
from gateway.rag.ingestion.spool import spool_file
from gateway.rag.metering import INGEST_ROUTE, Payer, check_embedding_access
from gateway.rag.resources import Retrieval

__all__ = ["Retry", "Stopped", "ingest"]


class Retry(Exception):
    """A transient failure (engine down or loading, database hiccup): try again later."""


class JobFailed(Exception):
    """The file cannot be ingested as things are: it ends `failed` with this error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def job_key(db: AsyncEngine, job: jobs.Job) -> KeyRecord | None:
    """The key that attached the file, as it is now; None for files attached before keys
    were recorded (not metered). JobFailed if it can no longer pay."""
    if job.key_id is None:
        return None
    if job.key_id == ADMIN.id:
        return ADMIN
    row = await KeyStore(db).get(job.key_id)
    record = to_record(row) if row is not None else None
    if record is None or not record.usable_at(datetime.now(UTC)):
        state = "was deleted" if record is None else "has been revoked or has expired"
        raise JobFailed(
            "invalid_api_key",
            f"The API key that attached this file ({job.key_id}) {state}; its embedding is "
            "metered against that key. Attach the file again with a valid key.",
        )
    return record


async def _payer(rag: Retrieval, db: AsyncEngine, job: jobs.Job) -> Payer:
    key = await job_key(db, job)
    try:
        check_embedding_access(rag, key)
    except PermissionDenied as exc:
        raise JobFailed(
            "model_not_allowed", f"The API key that attached this file ({job.key_id}): {exc}"
        ) from None
    return Payer(key, INGEST_ROUTE, f"ingest-{job.file_id}")


def _job_failure(exc: Exception, rag: Retrieval, job: jobs.Job) -> JobFailed:
    """What to put in `last_error` for a failure no retry can mend."""
    settings = rag.settings
    if isinstance(exc, TooManyChunks):
        return JobFailed(
            "max_chunks_per_file_exceeded",
            f"The file has more than {settings.max_chunks_per_file} chunks, the most one file "
            "may have (GATEWAY_MAX_CHUNKS_PER_FILE). Raise that setting, or attach the file "
            "with larger chunks (chunking_strategy.static.max_chunk_size_tokens).",
        )
    if isinstance(exc, QuotaExceeded):
        return JobFailed(
            "insufficient_quota",
            f"The API key that attached this file ({job.key_id}) ran out of its token "
            f"quota while embedding it: {exc.message} Attach the file again once the quota "
            "resets or is raised.",
        )
    if isinstance(exc, (RequestTooLarge, ChunkOverLimit)):
        return JobFailed(
            "rate_limit_exceeded",
            f"One chunk of this file needs more tokens than the tpm limit of the API key "
            f"that attached it ({job.key_id}) allows at once. Raise the key's tpm, or "
            "attach the file with smaller chunks.",
        )
    if isinstance(exc, MixedDimensions):
        return JobFailed("server_error", "The engine returned mixed dimensions.")
    assert isinstance(exc, GatewayError)
    return JobFailed("server_error", exc.message)


async def ingest(
    rag: Retrieval,
    job: jobs.Job,
    me: str,
    known_dims: set[int],
    still_ours: Callable[[], bool] = lambda: True,
) -> int:
    """Process `job`; the number of chunks stored. Raises Retry or Stopped."""
    db = rag.jobs
    filename = await jobs.file_name(db, job.file_id)
    if filename is None:
        raise Stopped
    run: Run | None = None
    done = False
    try:
        run = Run(rag, db, job, await _payer(rag, db, job), still_ours)
        await jobs.drop_staged(db, job)  # whatever an interrupted run left
        with spool_file(rag.settings.spool_dir, "gateway-ingest-") as source:
            await spool_stored(db, job.file_id, source)
            await run.embed_and_stage(filename, source)
        if run.count == 0:
            raise no_text(filename)
        assert run.dims is not None
        await ensure_index(db, run.dims, known_dims)
        staged = run.count - len(run.tail[0])
        if not await jobs.complete(db, job, me, run.id, run.usage, staged, run.tail):
            raise Stopped
        done = True
        return run.count
    except (UnparsableFile, JobFailed) as exc:
        await jobs.fail(db, job, me, exc.code, exc.message)
    except (
        UpstreamUnavailable,
        UpstreamTimeout,
        NotFound,
        SpoolUnavailable,
        jobs.StagingLost,
    ) as exc:
        raise Retry(str(exc)) from exc
    except EmbeddingFailed as exc:
        if exc.retryable:
            raise Retry(exc.message) from exc
        await jobs.fail(db, job, me, "server_error", exc.message)
    except (GatewayError, TooManyChunks, ChunkOverLimit, MixedDimensions) as exc:
        failure = _job_failure(exc, rag, job)
        await jobs.fail(db, job, me, failure.code, failure.message)
    finally:
        if run is not None and not done:
            # Only this run's rows: if the job went to another worker meanwhile, its run's
            # rows are not ours to drop. Best effort: the worker's sweep does the rest.
            with contextlib.suppress(Exception):
                await jobs.drop_staged(db, job, run.id)
    return 0
