"""Ingestion jobs in Postgres: a vector store file `in_progress` is a job; a worker claims
it with `FOR UPDATE SKIP LOCKED` and holds it by a lease it renews, so replicas never work
on the same file and a crashed worker's files are taken up once its lease runs out.

A run of a job stages its chunks batch by batch in `chunk_staging`, tagged with the run;
`complete` moves them into `chunks` in the transaction that marks the file completed, so
search sees a file whole or not at all, never a mix of two runs. A run that fails or
stops drops what it staged; what a crashed run left is dropped by the next run of the
job, or by the worker's sweep once the job is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.rag.ingestion.chunk_copy import CHUNKS, STAGING, attributes, copy_rows, halfvec
from gateway.rag.ingestion.chunking import ChunkingStrategy


@dataclass(frozen=True, slots=True)
class Job:
    store_id: str
    file_id: str
    attempts: int
    strategy: ChunkingStrategy
    key_id: str | None = None  # who pays for the embedding (see gateway.rag.metering)


_CLAIM = text(
    """
    UPDATE vector_store_files v
    SET lease_until = now() + make_interval(secs => :lease), leased_by = :me,
        attempts = v.attempts + 1
    FROM (
        SELECT vector_store_id, file_id FROM vector_store_files
        WHERE status = 'in_progress' AND (lease_until IS NULL OR lease_until < now())
        ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
    ) next
    WHERE v.vector_store_id = next.vector_store_id AND v.file_id = next.file_id
    RETURNING v.vector_store_id, v.file_id, v.attempts, v.chunking_type, v.max_chunk_tokens,
        v.chunk_overlap_tokens, v.key_id
    """
)
_MINE = "vector_store_id = :store AND file_id = :file AND leased_by = :me"
_DROP_STAGED = text("DELETE FROM chunk_staging WHERE vector_store_id = :store AND file_id = :file")


async def claim(db: AsyncEngine, me: str, lease_s: float) -> Job | None:
    async with db.begin() as conn:
        row = (await conn.execute(_CLAIM, {"me": me, "lease": lease_s})).mappings().first()
    if row is None:
        return None
    strategy = ChunkingStrategy(
        row["chunking_type"], row["max_chunk_tokens"], row["chunk_overlap_tokens"]
    )
    return Job(row["vector_store_id"], row["file_id"], row["attempts"], strategy, row["key_id"])


def _keys(job: Job, me: str) -> dict[str, Any]:
    return {"store": job.store_id, "file": job.file_id, "me": me}


async def renew(db: AsyncEngine, job: Job, me: str, lease_s: float) -> bool:
    """Extend the lease; False once the job is no longer ours (cancelled, deleted)."""
    sql = (
        "UPDATE vector_store_files SET lease_until = now() + make_interval(secs => :lease) "
        f"WHERE {_MINE} AND status = 'in_progress'"
    )
    async with db.begin() as conn:
        result = await conn.execute(text(sql), {**_keys(job, me), "lease": lease_s})
    return bool(result.rowcount)


async def release(db: AsyncEngine, me: str, job: Job | None = None, delay_s: float = 0) -> None:
    """Give a job back: at once and without counting the attempt after a clean shutdown
    (job None: all of this worker's), or after `delay_s` to retry a transient failure."""
    if job is None:
        sql = (
            "UPDATE vector_store_files SET lease_until = NULL, leased_by = NULL, "
            "attempts = greatest(attempts - 1, 0) WHERE leased_by = :me "
            "AND status = 'in_progress'"
        )
        params: dict[str, Any] = {"me": me}
    else:
        sql = (
            "UPDATE vector_store_files SET leased_by = NULL, "
            "lease_until = now() + make_interval(secs => :delay) "
            f"WHERE {_MINE} AND status = 'in_progress'"
        )
        params = {**_keys(job, me), "delay": delay_s}
    async with db.begin() as conn:
        await conn.execute(text(sql), params)


async def fail(db: AsyncEngine, job: Job, me: str, code: str, message: str) -> None:
    sql = text(
        "UPDATE vector_store_files SET status = 'failed', last_error = :error, "
        f"lease_until = NULL, leased_by = NULL WHERE {_MINE} AND status = 'in_progress'"
    ).bindparams(bindparam("error", type_=JSONB))
    error = {"code": code, "message": message[:1000]}
    async with db.begin() as conn:
        if (await conn.execute(sql, {**_keys(job, me), "error": error})).rowcount:
            await conn.execute(_DROP_STAGED, {"store": job.store_id, "file": job.file_id})


async def file_name(db: AsyncEngine, file_id: str) -> str | None:
    async with db.connect() as conn:
        name = (
            await conn.execute(text("SELECT filename FROM files WHERE id = :id"), {"id": file_id})
        ).scalar()
    return None if name is None else str(name)


async def drop_staged(db: AsyncEngine, job: Job, run: str | None = None) -> None:
    """Forget one run's staged chunks, or every run's (when the job is ours, no other run
    can be live: what they left is stale)."""
    params = {"store": job.store_id, "file": job.file_id}
    sql = _DROP_STAGED
    if run is not None:
        sql = text(f"{_DROP_STAGED.text} AND run = :run")
        params["run"] = run
    async with db.begin() as conn:
        await conn.execute(sql, params)


async def stage(
    db: AsyncEngine,
    job: Job,
    run: str,
    first_idx: int,
    texts: Sequence[str],
    vectors: Sequence[Sequence[float]],
) -> None:
    """One batch of embedded chunks, numbered from `first_idx`, in one short transaction."""
    rows = [
        (job.store_id, job.file_id, run, first_idx + i, chunk, len(vector), halfvec(vector))
        for i, (chunk, vector) in enumerate(zip(texts, vectors, strict=True))
    ]
    if rows:
        async with db.begin() as conn:
            await copy_rows(conn, STAGING, rows)


async def sweep_staged(db: AsyncEngine) -> int:
    """Drop staged chunks of jobs that are over (a run that crashed, then its job was
    cancelled, detached or finished by another run); how many rows went."""
    sql = text(
        "DELETE FROM chunk_staging s USING vector_store_files f "
        "WHERE f.vector_store_id = s.vector_store_id AND f.file_id = s.file_id "
        "AND f.status <> 'in_progress'"
    )
    async with db.begin() as conn:
        return (await conn.execute(sql)).rowcount


class StagingLost(Exception):
    """Fewer staged rows than the run wrote (a Postgres crash empties unlogged tables)."""


async def complete(
    db: AsyncEngine,
    job: Job,
    me: str,
    run: str,
    usage: int,
    staged: int,
    tail: tuple[Sequence[str], Sequence[Sequence[float]]] = ((), ()),
) -> bool:
    """Replace the file's chunks with the `staged` chunks `run` staged followed by `tail`
    (the last batch, never staged), and mark it completed, in one transaction, if the job
    is still ours; False (and nothing written) if it was cancelled or detached meanwhile.
    StagingLost (nothing written) if staged rows are missing."""
    async with db.begin() as conn:
        found = (
            await conn.execute(
                text(
                    f"SELECT attributes FROM vector_store_files WHERE {_MINE} "
                    "AND status = 'in_progress' FOR UPDATE"
                ),
                _keys(job, me),
            )
        ).first()
        if found is None:
            return False
        params = {"store": job.store_id, "file": job.file_id}
        await conn.execute(
            text("DELETE FROM chunks WHERE vector_store_id = :store AND file_id = :file"), params
        )
        if staged:  # a file of one batch has nothing staged
            moved = await conn.execute(
                text(
                    "INSERT INTO chunks (vector_store_id, file_id, idx, text, attributes, dims, "
                    "embedding) SELECT vector_store_id, file_id, idx, text, :attributes, dims, "
                    "embedding FROM chunk_staging WHERE vector_store_id = :store "
                    "AND file_id = :file AND run = :run ORDER BY idx"
                ).bindparams(bindparam("attributes", type_=JSONB)),
                {**params, "run": run, "attributes": found[0] or {}},
            )
            if moved.rowcount != staged:
                raise StagingLost(f"{moved.rowcount} of {staged} staged chunks were found")
            await conn.execute(_DROP_STAGED, params)
        texts, vectors = tail
        if texts:
            extra = attributes(found[0])
            await copy_rows(
                conn,
                CHUNKS,
                (
                    (job.store_id, job.file_id, staged + i, body, extra, len(vec), halfvec(vec))
                    for i, (body, vec) in enumerate(zip(texts, vectors, strict=True))
                ),
            )
        await conn.execute(
            text(
                "UPDATE vector_store_files SET status = 'completed', last_error = NULL, "
                "usage_bytes = :usage, lease_until = NULL, leased_by = NULL "
                "WHERE vector_store_id = :store AND file_id = :file"
            ),
            {**params, "usage": usage},
        )
    return True
