"""Queries shared by the vector store, store file and batch routes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import NotFound
from gateway.rag.access import Caller
from gateway.rag.ingestion.chunking import ChunkingStrategy

_COUNTS = """
    count(*) FILTER (WHERE f.status = 'in_progress') AS in_progress,
    count(*) FILTER (WHERE f.status = 'completed') AS completed,
    count(*) FILTER (WHERE f.status = 'failed') AS failed,
    count(*) FILTER (WHERE f.status = 'cancelled') AS cancelled
"""
STORE_SELECT = f"""
SELECT s.*, c.* FROM vector_stores s LEFT JOIN LATERAL (
    SELECT {_COUNTS}, coalesce(sum(f.usage_bytes), 0) AS usage_bytes
    FROM vector_store_files f WHERE f.vector_store_id = s.id
) c ON TRUE
"""
BATCH_SELECT = f"""
SELECT b.*, c.* FROM vector_store_file_batches b LEFT JOIN LATERAL (
    SELECT {_COUNTS} FROM vector_store_files f WHERE f.batch_id = b.id
) c ON TRUE
"""
VSF_SELECT = "SELECT f.* FROM vector_store_files f JOIN vector_stores s ON s.id = f.vector_store_id"


def store_not_found(store_id: str) -> NotFound:
    return NotFound(
        f"No vector store found with id '{store_id}'.",
        param="vector_store_id",
        code="vector_store_not_found",
    )


def file_not_found(file_id: str) -> NotFound:
    return NotFound(f"No file found with id '{file_id}'.", param="file_id", code="file_not_found")


async def visible_store(conn: AsyncConnection, who: Caller, store_id: str) -> Mapping[Any, Any]:
    params: dict[str, Any] = {"id": store_id}
    sql = f"{STORE_SELECT} WHERE s.id = :id AND {who.condition('s.owner', params)}"
    row = (await conn.execute(text(sql), params)).mappings().first()
    if row is None:
        raise store_not_found(store_id)
    return row


async def check_store(conn: AsyncConnection, who: Caller, store_id: str) -> None:
    """404 unless the store exists and the caller reaches it; locks it against deletion."""
    params: dict[str, Any] = {"id": store_id}
    sql = (
        f"SELECT 1 FROM vector_stores WHERE id = :id AND {who.condition('owner', params)} FOR SHARE"
    )
    if (await conn.execute(text(sql), params)).first() is None:
        raise store_not_found(store_id)


async def visible_store_file(
    conn: AsyncConnection, who: Caller, store_id: str, file_id: str
) -> Mapping[Any, Any]:
    params: dict[str, Any] = {"store": store_id, "file": file_id}
    sql = (
        f"{VSF_SELECT} WHERE f.vector_store_id = :store AND f.file_id = :file "
        f"AND {who.condition('s.owner', params)}"
    )
    row = (await conn.execute(text(sql), params)).mappings().first()
    if row is None:
        raise file_not_found(file_id)
    return row


@dataclass(frozen=True, slots=True)
class Attachment:
    file_id: str
    attributes: dict[str, Any]
    strategy: ChunkingStrategy


async def attach(
    conn: AsyncConnection,
    who: Caller,
    store_id: str,
    items: Sequence[Attachment],
    batch_id: str | None = None,
) -> None:
    """Queue files for ingestion into a store (the caller checked the store), to be
    embedded under the caller's key. A file already in the store keeps its state (and the
    key that attached it); it joins the batch if one is given."""
    if not items:
        return
    params: dict[str, Any] = {"ids": [item.file_id for item in items]}
    sql = f"SELECT id FROM files WHERE id = ANY(:ids) AND {who.condition('owner', params)}"
    found = set((await conn.execute(text(sql), params)).scalars().all())
    for item in items:
        if item.file_id not in found:
            raise file_not_found(item.file_id)
    insert = text(
        """
        INSERT INTO vector_store_files (vector_store_id, file_id, batch_id, status, attributes,
            chunking_type, max_chunk_tokens, chunk_overlap_tokens, usage_bytes, attempts, key_id)
        VALUES (:store, :file, :batch, 'in_progress', :attributes, :type, :max, :overlap, 0, 0,
            :key_id)
        ON CONFLICT (vector_store_id, file_id) DO UPDATE
            SET batch_id = coalesce(EXCLUDED.batch_id, vector_store_files.batch_id)
        """
    ).bindparams(bindparam("attributes", type_=JSONB))
    await conn.execute(
        insert,
        [
            {
                "store": store_id,
                "file": item.file_id,
                "batch": batch_id,
                "attributes": item.attributes,
                "type": item.strategy.type,
                "max": item.strategy.max_tokens,
                "overlap": item.strategy.overlap_tokens,
                "key_id": who.key_id,
            }
            for item in items
        ],
    )
