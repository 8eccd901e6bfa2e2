"""`/v1/files`: upload, list, retrieve, delete and download, as the openai SDK calls them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from gateway.http.disposition import attachment
from gateway.rag.access import Rag, Who
from gateway.rag.ingestion.file_store import read_parts, store_upload
from gateway.rag.ingestion.spool import spool_file
from gateway.rag.ingestion.uploads import check_declared_size, receive_upload
from gateway.rag.routes import files_db
from gateway.rag.routes.paging import page_request
from gateway.rag.routes.views import file_view, list_view, new_id

router = APIRouter(prefix="/v1/files")


@router.post("")
async def create_file(request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    """Spooled while the client sends (no database connection held), then written in one
    short transaction on retrieval's own pool."""
    settings = rag.settings
    check_declared_size(request, settings.max_upload_bytes)
    with (
        rag.uploads.hold(who.key_id or "-"),
        spool_file(settings.spool_dir, "gateway-upload-") as spool,
    ):
        received = await receive_upload(request, spool, settings.max_upload_bytes)
        async with rag.uploads.writing, rag.db.begin() as conn:
            row = await store_upload(conn, who, new_id("file-"), received, spool)
    return file_view(row)


@router.get("")
async def list_files(request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    db = rag.db
    query = request.query_params
    page = page_request(query, default_limit=10_000, max_limit=10_000)
    async with db.connect() as conn:
        rows, has_more = await files_db.list_page(conn, who, page, query.get("purpose"))
    return list_view([file_view(row) for row in rows], has_more)


@router.get("/{file_id}")
async def retrieve_file(file_id: str, request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    db = rag.db
    async with db.connect() as conn:
        return file_view(await files_db.visible_file(conn, who, file_id))


@router.delete("/{file_id}")
async def delete_file(file_id: str, request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    """Deleting a file also removes it from every vector store (as OpenAI does)."""
    db = rag.db
    async with db.begin() as conn:
        await files_db.delete(conn, who, file_id)
    return {"id": file_id, "object": "file", "deleted": True}


@router.get("/{file_id}/content")
async def file_content(file_id: str, request: Request, who: Who, rag: Rag) -> StreamingResponse:
    db = rag.db
    async with db.connect() as conn:
        row = await files_db.visible_file(conn, who, file_id)
    return StreamingResponse(
        read_parts(db, file_id),
        media_type="application/octet-stream",
        headers={
            "content-length": str(row["bytes"]),
            "content-disposition": attachment(row["filename"]),
        },
    )
