"""What retrieval works with, created in the app's lifespan: the gateway's settings, guard
and engine client, and retrieval's own database pools, upload slots and search caches.

Each kind of work has connections no other kind can take:

    Storage.db       keys, usage, quotas, /readyz, admin     GATEWAY_DB_POOL_SIZE (+ overflow)
    Retrieval.db     files, vector stores, writing           GATEWAY_RAG_DB_POOL_SIZE, no overflow
                     finished uploads, search's checks
    Retrieval.search the search statements (vector stores,   GATEWAY_RAG_DB_POOL_SIZE
                     chat retrieval)
    Retrieval.jobs   the ingestion worker                    2 per concurrent job, + 2

so a burst of uploads, searches or ingestion waits for its own pool (and answers 503
when that stays full) while key lookups, usage writes and /readyz go on. Uploads hold no
connection while their client sends (they are spooled to disk,
gateway.rag.ingestion.uploads).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.admission.guard import Guard
from gateway.config import Settings
from gateway.db.engine import create_engine
from gateway.db.read_pool import ReadPool
from gateway.metrics import Metrics
from gateway.rag.common_terms import CommonTerms
from gateway.rag.upload_slots import UploadSlots
from gateway.upstream.engines import Engines

# A retrieval request that cannot get a connection within this long gets a 503 (the
# error boundary's answer to a database that does not serve) instead of queueing on.
POOL_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Retrieval:
    settings: Settings
    metrics: Metrics
    guard: Guard  # every embedding is admitted and metered for the key that caused it
    engines: Engines
    db: AsyncEngine
    search: ReadPool
    jobs: AsyncEngine
    uploads: UploadSlots
    common_terms: CommonTerms
    # Set when files are attached here: this process's ingestion worker looks at once
    # (other replicas find the work by polling).
    work_arrived: asyncio.Event

    async def close(self) -> None:
        await self.search.close()
        await self.db.dispose()
        await self.jobs.dispose()


def ingest_pool_size(concurrency: int) -> int:
    """Each job uses one connection for its work and one to renew its lease; the worker
    claims jobs and creates indexes on two more."""
    return 2 * concurrency + 2


async def open_retrieval(
    database_url: str, settings: Settings, guard: Guard, engines: Engines
) -> Retrieval:
    size = settings.rag_db_pool_size
    db = create_engine(database_url, size, max_overflow=0, pool_timeout=POOL_TIMEOUT_S)
    search = ReadPool(database_url, size, timeout_s=POOL_TIMEOUT_S, name="search")
    await search.open()
    jobs = create_engine(
        database_url, ingest_pool_size(settings.ingest_concurrency), max_overflow=0
    )
    uploads = UploadSlots(
        settings.max_uploads_per_key,
        settings.max_uploads,
        size // 2,
        refused=guard.metrics.rate_limited.labels("uploads").inc,
    )
    return Retrieval(
        settings,
        guard.metrics,
        guard,
        engines,
        db,
        search,
        jobs,
        uploads,
        CommonTerms(),
        asyncio.Event(),
    )
