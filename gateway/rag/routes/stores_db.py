"""Queries on vector stores: one store with its file counts, a page of them, creating,
updating and deleting one, and the check that a store is there for the caller."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import NotFound
from gateway.rag.access import Caller
from gateway.rag.expiry import expired_sql, store_expired
from gateway.rag.routes.listing import list_rows
from gateway.rag.routes.paging import PageRequest

# How many of a store's (or a batch's) files are in each state, over `vector_store_files f`.
FILE_COUNTS = """
    count(*) FILTER (WHERE f.status = 'in_progress') AS in_progress,
    count(*) FILTER (WHERE f.status = 'completed') AS completed,
    count(*) FILTER (WHERE f.status = 'failed') AS failed,
    count(*) FILTER (WHERE f.status = 'cancelled') AS cancelled
"""
STORE_SELECT = f"""
SELECT s.*, c.* FROM vector_stores s LEFT JOIN LATERAL (
    SELECT {FILE_COUNTS}, coalesce(sum(f.usage_bytes), 0) AS usage_bytes
    FROM vector_store_files f WHERE f.vector_store_id = s.id
) c ON TRUE
"""
_JSONB_PARAMS = (bindparam("metadata", type_=JSONB), bindparam("expires_after", type_=JSONB))
# What `update` may change, in the order the SET clause names them.
_SETS = {
    "name": "name = :name",
    "metadata": "metadata = :metadata",
    "expires_after": "expires_after = :expires_after, last_active_at = now()",
}


def store_not_found(store_id: str) -> NotFound:
    return NotFound(
        f"No vector store found with id '{store_id}'.",
        param="vector_store_id",
        code="vector_store_not_found",
    )


async def visible_store(conn: AsyncConnection, who: Caller, store_id: str) -> Mapping[Any, Any]:
    params: dict[str, Any] = {"id": store_id}
    sql = f"{STORE_SELECT} WHERE s.id = :id AND {who.condition('s.owner', params)}"
    row = (await conn.execute(text(sql), params)).mappings().first()
    if row is None:
        raise store_not_found(store_id)
    return row


async def check_store(
    conn: AsyncConnection, who: Caller, store_id: str, *, adding: bool = False
) -> None:
    """404 unless the store exists and the caller reaches it; locks it against deletion.
    `adding` files to it also needs it not expired (gateway.rag.expiry)."""
    params: dict[str, Any] = {"id": store_id}
    sql = (
        f"SELECT {expired_sql('vector_stores')} FROM vector_stores "
        f"WHERE id = :id AND {who.condition('owner', params)} FOR SHARE"
    )
    expired = (await conn.execute(text(sql), params)).scalar()
    if expired is None:
        raise store_not_found(store_id)
    if adding and expired:
        raise store_expired(store_id, "vector_store_id")


async def list_page(
    conn: AsyncConnection, who: Caller, page: PageRequest
) -> tuple[list[RowMapping], bool]:
    """The caller's stores with their file counts, one page, and whether more follow."""
    params: dict[str, Any] = {}
    where = who.condition("s.owner", params)
    return await list_rows(
        conn,
        select=STORE_SELECT,
        where=where,
        params=params,
        page=page,
        seq="s.seq",
        cursor=f"SELECT s.seq FROM vector_stores s WHERE s.id = :cursor AND {where}",
    )


async def create(
    conn: AsyncConnection,
    store_id: str,
    owner: str | None,
    *,
    name: str,
    description: str | None,
    metadata: dict[str, str],
    expires_after: dict[str, Any] | None,
) -> None:
    insert = text(
        "INSERT INTO vector_stores (id, owner, name, description, metadata, expires_after) "
        "VALUES (:id, :owner, :name, :description, :metadata, :expires_after)"
    ).bindparams(*_JSONB_PARAMS)
    values = {
        "id": store_id,
        "owner": owner,
        "name": name,
        "description": description,
        "metadata": metadata,
        "expires_after": expires_after,
    }
    await conn.execute(insert, values)


async def update(
    conn: AsyncConnection, who: Caller, store_id: str, changes: Mapping[str, Any]
) -> None:
    """Set the fields `changes` names (name, metadata, expires_after; the last one restarts
    the expiry clock). A store the caller cannot reach is left as it is."""
    params: dict[str, Any] = {"id": store_id}
    sets: list[str] = []
    for field, assignment in _SETS.items():
        if field in changes:
            sets.append(assignment)
            params[field] = changes[field]
    if not sets:
        return
    where = who.condition("owner", params)
    sql = f"UPDATE vector_stores SET {', '.join(sets)} WHERE id = :id AND {where}"
    statement = text(sql).bindparams(*(p for p in _JSONB_PARAMS if p.key in params))
    await conn.execute(statement, params)


async def delete(conn: AsyncConnection, who: Caller, store_id: str) -> None:
    """Delete the store (its file links and chunks cascade; the files stay); NotFound if
    the caller cannot."""
    params: dict[str, Any] = {"id": store_id}
    where = who.condition("owner", params)
    sql = f"DELETE FROM vector_stores WHERE id = :id AND {where} RETURNING id"
    if (await conn.execute(text(sql), params)).first() is None:
        raise store_not_found(store_id)
