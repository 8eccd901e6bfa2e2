"""Ingestion jobs in Postgres: a vector store file `in_progress` is a job; a worker claims
it with `FOR UPDATE SKIP LOCKED` and holds it by a lease it renews, so replicas never work
on the same file and a crashed worker's files are taken up once its lease runs out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.rag.chunking import ChunkingStrategy


@dataclass(frozen=True, slots=True)
class Job:
    store_id: str
    file_id: str
    attempts: int
    strategy: ChunkingStrategy


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
        v.chunk_overlap_tokens
    """
)
_MINE = "vector_store_id = :store AND file_id = :file AND leased_by = :me"


async def claim(db: AsyncEngine, me: str, lease_s: float) -> Job | None:
    async with db.begin() as conn:
        row = (await conn.execute(_CLAIM, {"me": me, "lease": lease_s})).mappings().first()
    if row is None:
        return None
    strategy = ChunkingStrategy(
        row["chunking_type"], row["max_chunk_tokens"], row["chunk_overlap_tokens"]
    )
    return Job(row["vector_store_id"], row["file_id"], row["attempts"], strategy)


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
        await conn.execute(sql, {**_keys(job, me), "error": error})


async def load_file(db: AsyncEngine, file_id: str) -> tuple[str, bytes] | None:
    async with db.connect() as conn:
        name = (
            await conn.execute(text("SELECT filename FROM files WHERE id = :id"), {"id": file_id})
        ).scalar()
        if name is None:
            return None
        parts = await conn.execute(
            text("SELECT data FROM file_parts WHERE file_id = :id ORDER BY part"), {"id": file_id}
        )
        return str(name), b"".join(bytes(p) for p in parts.scalars())


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in vector) + "]"


async def complete(
    db: AsyncEngine, job: Job, me: str, texts: Sequence[str], vectors: Sequence[Sequence[float]]
) -> bool:
    """Replace the file's chunks and mark it completed, in one transaction, if the job is
    still ours; False (and nothing written) if it was cancelled or detached meanwhile."""
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
        insert = text(
            "INSERT INTO chunks (vector_store_id, file_id, idx, text, attributes, dims, embedding)"
            " VALUES (:store, :file, :idx, :text, :attributes, :dims, CAST(:vec AS halfvec))"
        ).bindparams(bindparam("attributes", type_=JSONB))
        rows = [
            {
                **params,
                "idx": i,
                "text": chunk,
                "attributes": found[0] or {},
                "dims": len(vector),
                "vec": vector_literal(vector),
            }
            for i, (chunk, vector) in enumerate(zip(texts, vectors, strict=True))
        ]
        if rows:
            await conn.execute(insert, rows)
        usage = sum(len(t.encode()) for t in texts) + sum(2 * len(v) for v in vectors)
        await conn.execute(
            text(
                "UPDATE vector_store_files SET status = 'completed', last_error = NULL, "
                "usage_bytes = :usage, lease_until = NULL, leased_by = NULL "
                "WHERE vector_store_id = :store AND file_id = :file"
            ),
            {**params, "usage": usage},
        )
    # Merge the text index's pending list now, in one sorted batch, rather than leave
    # every search to scan it until autovacuum comes by.
    async with db.begin() as conn:
        await conn.execute(text("SELECT gin_clean_pending_list('ix_chunks_tsv'::regclass)"))
    return True
