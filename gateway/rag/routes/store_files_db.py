"""Queries on the files of vector stores and their batches: attaching files (which queues
their ingestion, gateway.rag.ingestion.jobs), one store file, a page of them, their
attributes, detaching one, its chunks' text; creating, reading and cancelling a batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import NotFound
from gateway.rag.access import Caller
from gateway.rag.ingestion.chunking import ChunkingStrategy
from gateway.rag.routes.listing import list_rows
from gateway.rag.routes.paging import PageRequest
from gateway.rag.routes.stores_db import FILE_COUNTS

BATCH_SELECT = f"""
SELECT b.*, c.* FROM vector_store_file_batches b LEFT JOIN LATERAL (
    SELECT {FILE_COUNTS} FROM vector_store_files f WHERE f.batch_id = b.id
) c ON TRUE
"""
VSF_SELECT = "SELECT f.* FROM vector_store_files f JOIN vector_stores s ON s.id = f.vector_store_id"


def file_not_found(file_id: str) -> NotFound:
    return NotFound(f"No file found with id '{file_id}'.", param="file_id", code="file_not_found")


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


async def list_page(
    conn: AsyncConnection,
    who: Caller,
    store_id: str,
    page: PageRequest,
    *,
    batch_id: str | None = None,
    status: str | None = None,
) -> tuple[list[RowMapping], bool]:
    """A store's files (of one batch, in one status, if given), one page, and whether more
    follow; the caller checked the store (and the batch)."""
    params: dict[str, Any] = {"store": store_id}
    where = f"f.vector_store_id = :store AND {who.condition('s.owner', params)}"
    # The cursor stays valid when its file changes status under a `filter`.
    cursor = VSF_SELECT.replace("f.*", "f.seq", 1) + f" WHERE f.file_id = :cursor AND {where}"
    if batch_id is not None:
        where += " AND f.batch_id = :batch"
        params["batch"] = batch_id
    if status:
        where += " AND f.status = :status"
        params["status"] = status
    return await list_rows(
        conn,
        select=VSF_SELECT,
        where=where,
        params=params,
        page=page,
        seq="f.seq",
        cursor=cursor,
    )


async def set_attributes(
    conn: AsyncConnection, store_id: str, file_id: str, attributes: dict[str, Any]
) -> None:
    """On the store file and on its chunks, where filters read them."""
    params = {"store": store_id, "file": file_id, "attributes": attributes}
    for table in ("vector_store_files", "chunks"):
        statement = text(
            f"UPDATE {table} SET attributes = :attributes "
            "WHERE vector_store_id = :store AND file_id = :file"
        ).bindparams(bindparam("attributes", type_=JSONB))
        await conn.execute(statement, params)


async def detach(conn: AsyncConnection, store_id: str, file_id: str) -> None:
    """Remove the file from the store (its chunks cascade)."""
    await conn.execute(
        text("DELETE FROM vector_store_files WHERE vector_store_id = :s AND file_id = :f"),
        {"s": store_id, "f": file_id},
    )


async def chunk_texts(conn: AsyncConnection, store_id: str, file_id: str) -> list[str]:
    """The text of the file's chunks in the store, in order."""
    texts = (
        await conn.execute(
            text(
                "SELECT text FROM chunks WHERE vector_store_id = :s AND file_id = :f ORDER BY idx"
            ),
            {"s": store_id, "f": file_id},
        )
    ).scalars()
    return list(texts)


# -- batches ------------------------------------------------------------------------------


async def create_batch(conn: AsyncConnection, store_id: str, batch_id: str) -> None:
    await conn.execute(
        text(
            "INSERT INTO vector_store_file_batches (id, vector_store_id, cancelled) "
            "VALUES (:id, :store, false)"
        ),
        {"id": batch_id, "store": store_id},
    )


async def batch(conn: AsyncConnection, store_id: str, batch_id: str) -> Mapping[Any, Any]:
    """The batch with its file counts; NotFound if it is not the store's."""
    sql = f"{BATCH_SELECT} WHERE b.id = :id AND b.vector_store_id = :store"
    row = (await conn.execute(text(sql), {"id": batch_id, "store": store_id})).mappings().first()
    if row is None:
        raise NotFound(
            f"No file batch found with id '{batch_id}'.", param="batch_id", code="batch_not_found"
        )
    return row


async def cancel_batch(conn: AsyncConnection, batch_id: str) -> None:
    """Files of the batch not yet ingested become `cancelled`."""
    await conn.execute(
        text("UPDATE vector_store_file_batches SET cancelled = true WHERE id = :id"),
        {"id": batch_id},
    )
    await conn.execute(
        text(
            "UPDATE vector_store_files SET status = 'cancelled', lease_until = NULL, "
            "leased_by = NULL WHERE batch_id = :id AND status = 'in_progress'"
        ),
        {"id": batch_id},
    )
