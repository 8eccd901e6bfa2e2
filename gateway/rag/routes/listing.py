"""One cursor-paged SELECT for every list route (files, stores, store files, batch files)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import InvalidRequest
from gateway.rag.routes.paging import PageRequest, seq_window


async def list_rows(
    conn: AsyncConnection,
    *,
    select: str,
    where: str,
    params: dict[str, Any],
    page: PageRequest,
    seq: str,
    cursor: str,
) -> tuple[list[RowMapping], bool]:
    """Rows of `select` matching `where`, one page of them, and whether more follow.

    `seq` names the creation-order column; `cursor` is a SELECT of that column for the
    object id bound as `:cursor`, within the same visible set (a foreign id is unknown)."""
    after = await _cursor_seq(conn, cursor, params, page.after, "after")
    before = await _cursor_seq(conn, cursor, params, page.before, "before")
    window, order_by, reverse = seq_window(page.order, after, before, seq)
    sql = f"{select} WHERE {where} AND {window} ORDER BY {order_by} LIMIT :page_limit"
    result = await conn.execute(text(sql), {**params, "page_limit": page.limit + 1})
    rows = list(result.mappings().all())
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if reverse:
        rows.reverse()
    return rows, has_more


async def _cursor_seq(
    conn: AsyncConnection, cursor: str, params: dict[str, Any], value: str | None, name: str
) -> int | None:
    if value is None:
        return None
    found = (await conn.execute(text(cursor), {**params, "cursor": value})).scalar()
    if found is None:
        raise InvalidRequest(f"No object with id '{value}' to page {name}.", param=name)
    return int(found)
