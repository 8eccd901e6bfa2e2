"""Queries on `files` for the Files API: one file, a page of them, deleting one. Their
bytes are written and read by gateway.rag.ingestion.file_store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import NotFound
from gateway.rag.access import Caller
from gateway.rag.routes.listing import list_rows
from gateway.rag.routes.paging import PageRequest


def _not_found(file_id: str) -> NotFound:
    return NotFound(f"No such File object: {file_id}", param="file_id", code="file_not_found")


async def visible_file(conn: AsyncConnection, who: Caller, file_id: str) -> Mapping[Any, Any]:
    params: dict[str, Any] = {"id": file_id}
    sql = f"SELECT * FROM files WHERE id = :id AND {who.condition('owner', params)}"
    row = (await conn.execute(text(sql), params)).mappings().first()
    if row is None:
        raise _not_found(file_id)
    return row


async def list_page(
    conn: AsyncConnection, who: Caller, page: PageRequest, purpose: str | None
) -> tuple[list[RowMapping], bool]:
    """The caller's files (of `purpose`, if given), one page, and whether more follow."""
    params: dict[str, Any] = {}
    where = who.condition("owner", params)
    if purpose:
        where += " AND purpose = :purpose"
        params["purpose"] = purpose
    return await list_rows(
        conn,
        select="SELECT * FROM files",
        where=where,
        params=params,
        page=page,
        seq="seq",
        cursor=f"SELECT seq FROM files WHERE id = :cursor AND {where}",
    )


async def delete(conn: AsyncConnection, who: Caller, file_id: str) -> None:
    """Delete the file (its parts and store links cascade); NotFound if the caller cannot."""
    params: dict[str, Any] = {"id": file_id}
    sql = f"DELETE FROM files WHERE id = :id AND {who.condition('owner', params)} RETURNING id"
    if (await conn.execute(text(sql), params)).first() is None:
        raise _not_found(file_id)
