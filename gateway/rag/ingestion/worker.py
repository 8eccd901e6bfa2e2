"""The ingestion worker: a task in each gateway process that claims and runs jobs.

Jobs live in Postgres (gateway.rag.ingestion.jobs), so a restart resumes unfinished files
and any number of replicas share the work. A clean stop gives its jobs back at once; a crash
leaves them to be taken up when their lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.rag.ingestion import jobs
from gateway.rag.ingestion.ingest import Retry, Stopped, ingest
from gateway.rag.ingestion.text_index import PendingMerge
from gateway.rag.resources import Retrieval

log = logging.getLogger("gateway.rag")

# Staged chunks a crashed run left behind are dropped this often (gateway.rag.ingestion.jobs).
_SWEEP_S = 600.0


class IngestWorker:
    def __init__(
        self,
        rag: Retrieval,
        *,
        concurrency: int | None = None,
        lease_s: float | None = None,
        poll_s: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        settings = rag.settings
        self.rag = rag
        self.concurrency = concurrency or settings.ingest_concurrency
        self.lease_s = lease_s or settings.ingest_lease_s
        self.poll_s = poll_s or settings.ingest_poll_s
        self.max_attempts = max_attempts or settings.ingest_max_attempts
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.known_dims: set[int] = set()
        self.merge = PendingMerge()  # the text index's, after files complete
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._swept_at = float("-inf")

    @property
    def db(self) -> AsyncEngine:
        """The worker's own pool (gateway.rag.resources): ingestion never waits on, nor
        takes, the connections requests use."""
        return self.rag.jobs

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="rag-ingest")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(SQLAlchemyError, OSError):
            await self.merge.maybe(self.db, self._now(), idle=True)
        try:
            await jobs.release(self.db, self.id)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("ingest: could not give back jobs at shutdown (%s)", exc)

    async def _loop(self) -> None:
        db = self.db
        while True:
            self.rag.work_arrived.clear()
            try:
                await self._sweep()
                while len(self._running) < self.concurrency:
                    job = await jobs.claim(db, self.id, self.lease_s)
                    if job is None:
                        break
                    task = asyncio.create_task(self._run(job))
                    self._running.add(task)
                    task.add_done_callback(self._done)
                if not self._running:
                    await self.merge.maybe(db, self._now(), idle=True)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("ingest: cannot claim work (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rag.work_arrived.wait(), self.poll_s)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _sweep(self) -> None:
        now = self._now()
        if now - self._swept_at < _SWEEP_S:
            return
        self._swept_at = now
        dropped = await jobs.sweep_staged(self.db)
        if dropped:
            log.info("ingest: dropped %d staged chunks of runs that ended elsewhere", dropped)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.rag.work_arrived.set()

    async def _run(self, job: jobs.Job) -> None:
        db = self.db
        ours = True

        async def heartbeat() -> None:
            nonlocal ours
            while ours:
                await asyncio.sleep(self.lease_s / 3)
                with contextlib.suppress(SQLAlchemyError, OSError):
                    ours = await jobs.renew(db, job, self.id, self.lease_s)

        beat = asyncio.create_task(heartbeat())
        try:
            if job.attempts > self.max_attempts:
                await jobs.fail(
                    db,
                    job,
                    self.id,
                    "server_error",
                    f"Ingestion failed {self.max_attempts} times; giving up.",
                )
                return
            count = await ingest(self.rag, job, self.id, self.known_dims, lambda: ours)
            if count:
                self.merge.completed()
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await self.merge.maybe(db, self._now(), idle=False)
            log.info(
                "ingested file",
                extra={"file_id": job.file_id, "vector_store_id": job.store_id, "chunks": count},
            )
        except Stopped:
            log.info("ingest: %s/%s was cancelled or removed", job.store_id, job.file_id)
        except (Retry, SQLAlchemyError, OSError) as exc:
            delay = min(60.0, 2.0**job.attempts)
            log.warning("ingest: %s will be retried in %.0fs (%s)", job.file_id, delay, exc)
            with contextlib.suppress(SQLAlchemyError, OSError):
                await jobs.release(db, self.id, job, delay)
        except Exception as exc:
            log.exception("ingest: %s failed", job.file_id)
            with contextlib.suppress(SQLAlchemyError, OSError):
                await jobs.fail(db, job, self.id, "server_error", f"Internal error: {exc}")
        finally:
            ours = False
            beat.cancel()


async def start_worker(rag: Retrieval) -> IngestWorker:
    """For the app's lifespan; stop it before retrieval's pools close."""
    worker = IngestWorker(rag)
    worker.start()
    return worker
