"""The vector stores a search reads: each one asked for must be there for the caller and
not expired (gateway.rag.expiry), and is marked active (its `last_active_at`, which
`expires_after` counts from), at most once a minute, in the same statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import NotFound
from gateway.rag.access import Caller
from gateway.rag.expiry import expired_sql, store_expired


async def check_stores(db: AsyncEngine, who: Caller, ids: list[str]) -> None:
    """404 for the first store the caller cannot reach, 400 for the first expired one;
    marks the others active (an expired store stays expired)."""
    params: dict[str, Any] = {"ids": ids}
    sql = f"""
        WITH visible AS (
            SELECT id, {expired_sql("s")} AS expired FROM vector_stores s
            WHERE id = ANY(:ids) AND {who.condition("owner", params)}
        ), touched AS (
            UPDATE vector_stores SET last_active_at = now()
            WHERE id IN (SELECT id FROM visible WHERE NOT expired)
                AND last_active_at < now() - interval '1 minute'
        )
        SELECT id, expired FROM visible
    """
    async with db.begin() as conn:
        found = {row.id: row.expired for row in await conn.execute(text(sql), params)}
    for store_id in ids:
        if store_id not in found:
            raise NotFound(
                f"No vector store found with id '{store_id}'.",
                param="vector_store_ids",
                code="vector_store_not_found",
            )
    for store_id in ids:
        if found[store_id]:
            raise store_expired(store_id, "vector_store_ids")
