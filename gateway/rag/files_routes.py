"""`/v1/files`: upload, list, retrieve, delete and download, as the openai SDK calls them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import NotFound
from gateway.http.disposition import attachment
from gateway.rag.access import Caller, Who, services_of
from gateway.rag.listing import list_rows
from gateway.rag.paging import page_request
from gateway.rag.uploads import receive_upload
from gateway.rag.views import file_view, list_view

router = APIRouter(prefix="/v1/files")


def _not_found(file_id: str) -> NotFound:
    return NotFound(f"No such File object: {file_id}", param="file_id", code="file_not_found")


async def visible_file(conn: AsyncConnection, who: Caller, file_id: str) -> Mapping[Any, Any]:
    params: dict[str, Any] = {"id": file_id}
    sql = f"SELECT * FROM files WHERE id = :id AND {who.condition('owner', params)}"
    row = (await conn.execute(text(sql), params)).mappings().first()
    if row is None:
        raise _not_found(file_id)
    return row


@router.post("")
async def create_file(request: Request, who: Who) -> dict[str, Any]:
    services = services_of(request)
    assert services.db is not None
    limit = services.settings.max_upload_bytes
    async with services.db.begin() as conn:
        row = await receive_upload(request, conn, who, limit)
    return file_view(row)


@router.get("")
async def list_files(request: Request, who: Who) -> dict[str, Any]:
    services = services_of(request)
    assert services.db is not None
    query = request.query_params
    page = page_request(query, default_limit=10_000, max_limit=10_000)
    params: dict[str, Any] = {}
    where = who.condition("owner", params)
    if query.get("purpose"):
        where += " AND purpose = :purpose"
        params["purpose"] = query["purpose"]
    async with services.db.connect() as conn:
        rows, has_more = await list_rows(
            conn,
            select="SELECT * FROM files",
            where=where,
            params=params,
            page=page,
            seq="seq",
            cursor=f"SELECT seq FROM files WHERE id = :cursor AND {where}",
        )
    return list_view([file_view(row) for row in rows], has_more)


@router.get("/{file_id}")
async def retrieve_file(file_id: str, request: Request, who: Who) -> dict[str, Any]:
    services = services_of(request)
    assert services.db is not None
    async with services.db.connect() as conn:
        return file_view(await visible_file(conn, who, file_id))


@router.delete("/{file_id}")
async def delete_file(file_id: str, request: Request, who: Who) -> dict[str, Any]:
    """Deleting a file also removes it from every vector store (as OpenAI does)."""
    services = services_of(request)
    assert services.db is not None
    params: dict[str, Any] = {"id": file_id}
    sql = f"DELETE FROM files WHERE id = :id AND {who.condition('owner', params)} RETURNING id"
    async with services.db.begin() as conn:
        if (await conn.execute(text(sql), params)).first() is None:
            raise _not_found(file_id)
    return {"id": file_id, "object": "file", "deleted": True}


@router.get("/{file_id}/content")
async def file_content(file_id: str, request: Request, who: Who) -> StreamingResponse:
    services = services_of(request)
    assert services.db is not None
    async with services.db.connect() as conn:
        row = await visible_file(conn, who, file_id)
    return StreamingResponse(
        read_parts(services.db, file_id),
        media_type="application/octet-stream",
        headers={
            "content-length": str(row["bytes"]),
            "content-disposition": attachment(row["filename"]),
        },
    )


async def read_parts(db: AsyncEngine, file_id: str) -> AsyncIterator[bytes]:
    """A file's bytes, one ~1 MiB part per query, so a download holds one part at a time."""
    part = 0
    while True:
        async with db.connect() as conn:
            data = (
                await conn.execute(
                    text("SELECT data FROM file_parts WHERE file_id = :id AND part = :part"),
                    {"id": file_id, "part": part},
                )
            ).scalar()
        if data is None:
            return
        yield bytes(data)
        part += 1
