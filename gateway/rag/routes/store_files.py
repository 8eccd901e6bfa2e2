"""`/v1/vector_stores/{id}/files` and `/file_batches`: attaching files, their ingestion state,
attributes and parsed content."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import InvalidRequest
from gateway.rag.access import Caller, Rag, Who
from gateway.rag.ingestion.chunking import parse_strategy
from gateway.rag.routes import store_files_db, stores_db, views
from gateway.rag.routes.body import json_body
from gateway.rag.routes.paging import page_request

router = APIRouter(prefix="/v1/vector_stores/{store_id}")

# The SDKs' poll helpers wait this long between retrievals of an unfinished file or batch.
_POLL_AFTER = {"openai-poll-after-ms": "500"}


def _polled(view: dict[str, Any], busy: bool) -> JSONResponse:
    return JSONResponse(view, headers=_POLL_AFTER if busy else None)


@router.post("/files")
async def create_store_file(store_id: str, request: Request, who: Who, rag: Rag) -> JSONResponse:
    db = rag.db
    body = await json_body(request)
    file_id = body.get("file_id")
    if not isinstance(file_id, str) or not file_id:
        raise InvalidRequest("file_id is required.", param="file_id")
    item = store_files_db.Attachment(
        file_id,
        views.attributes(body.get("attributes")),
        parse_strategy(body.get("chunking_strategy")),
    )
    async with db.begin() as conn:
        await stores_db.check_store(conn, who, store_id, adding=True)
        await store_files_db.attach(conn, who, store_id, [item])
        row = await store_files_db.visible_store_file(conn, who, store_id, file_id)
    rag.work_arrived.set()
    return _polled(views.vector_store_file_view(row), row["status"] == "in_progress")


@router.get("/files/{file_id}")
async def retrieve_store_file(
    store_id: str, file_id: str, request: Request, who: Who, rag: Rag
) -> JSONResponse:
    db = rag.db
    async with db.connect() as conn:
        row = await store_files_db.visible_store_file(conn, who, store_id, file_id)
    return _polled(views.vector_store_file_view(row), row["status"] == "in_progress")


@router.post("/files/{file_id}")
async def update_store_file(
    store_id: str, file_id: str, request: Request, who: Who, rag: Rag
) -> dict[str, Any]:
    """New attributes apply to the file's chunks at once (filters read them there)."""
    db = rag.db
    body = await json_body(request)
    if "attributes" not in body:
        raise InvalidRequest("attributes is required.", param="attributes")
    attributes = views.attributes(body["attributes"])
    async with db.begin() as conn:
        await store_files_db.visible_store_file(conn, who, store_id, file_id)
        await store_files_db.set_attributes(conn, store_id, file_id, attributes)
        row = await store_files_db.visible_store_file(conn, who, store_id, file_id)
    return views.vector_store_file_view(row)


@router.get("/files")
async def list_store_files(store_id: str, request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    return await _list_files(store_id, None, request, who, rag.db)


@router.delete("/files/{file_id}")
async def delete_store_file(
    store_id: str, file_id: str, request: Request, who: Who, rag: Rag
) -> dict[str, Any]:
    """Detach the file (its chunks go with it); the file itself stays."""
    db = rag.db
    async with db.begin() as conn:
        await store_files_db.visible_store_file(conn, who, store_id, file_id)
        await store_files_db.detach(conn, store_id, file_id)
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


@router.get("/files/{file_id}/content")
async def store_file_content(
    store_id: str, file_id: str, request: Request, who: Who, rag: Rag
) -> dict[str, Any]:
    """The parsed text, chunk by chunk (chunks overlap as the chunking strategy says)."""
    db = rag.db
    async with db.connect() as conn:
        await store_files_db.visible_store_file(conn, who, store_id, file_id)
        texts = await store_files_db.chunk_texts(conn, store_id, file_id)
    data = [{"type": "text", "text": chunk} for chunk in texts]
    return {
        "object": "vector_store.file_content.page",
        "data": data,
        "has_more": False,
        "next_page": None,
    }


# -- batches ------------------------------------------------------------------------------


@router.post("/file_batches")
async def create_batch(store_id: str, request: Request, who: Who, rag: Rag) -> JSONResponse:
    db = rag.db
    body = await json_body(request)
    items = _batch_items(body)
    batch_id = views.new_id("vsfb_")
    async with db.begin() as conn:
        await stores_db.check_store(conn, who, store_id, adding=True)
        await store_files_db.create_batch(conn, store_id, batch_id)
        await store_files_db.attach(conn, who, store_id, items, batch_id)
        view = views.batch_view(await store_files_db.batch(conn, store_id, batch_id))
    rag.work_arrived.set()
    return _polled(view, view["status"] == "in_progress")


def _batch_items(body: dict[str, Any]) -> list[store_files_db.Attachment]:
    files = body.get("files")
    if files is not None:
        if body.get("file_ids"):
            raise InvalidRequest("Send either file_ids or files, not both.", param="files")
        if not isinstance(files, list) or not files or len(files) > 2000:
            raise InvalidRequest("files must be an array of 1 to 2000 objects.", param="files")
        items = []
        for i, entry in enumerate(files):
            if not isinstance(entry, dict) or not isinstance(entry.get("file_id"), str):
                raise InvalidRequest("Each entry needs a file_id.", param=f"files[{i}].file_id")
            items.append(
                store_files_db.Attachment(
                    entry["file_id"],
                    views.attributes(entry.get("attributes"), f"files[{i}].attributes"),
                    parse_strategy(entry.get("chunking_strategy"), f"files[{i}].chunking_strategy"),
                )
            )
        return items
    file_ids = views.string_list(body.get("file_ids"), "file_ids")
    if not file_ids:
        raise InvalidRequest("Send file_ids or files.", param="file_ids")
    attributes = views.attributes(body.get("attributes"))
    strategy = parse_strategy(body.get("chunking_strategy"))
    return [store_files_db.Attachment(file_id, attributes, strategy) for file_id in file_ids]


@router.get("/file_batches/{batch_id}")
async def retrieve_batch(
    store_id: str, batch_id: str, request: Request, who: Who, rag: Rag
) -> JSONResponse:
    db = rag.db
    async with db.connect() as conn:
        await stores_db.check_store(conn, who, store_id)
        view = views.batch_view(await store_files_db.batch(conn, store_id, batch_id))
    return _polled(view, view["status"] == "in_progress")


@router.post("/file_batches/{batch_id}/cancel")
async def cancel_batch(
    store_id: str, batch_id: str, request: Request, who: Who, rag: Rag
) -> dict[str, Any]:
    """Files not yet ingested become `cancelled`; a worker busy with one drops its work."""
    db = rag.db
    async with db.begin() as conn:
        await stores_db.check_store(conn, who, store_id)
        await store_files_db.batch(conn, store_id, batch_id)
        await store_files_db.cancel_batch(conn, batch_id)
        return views.batch_view(await store_files_db.batch(conn, store_id, batch_id))


@router.get("/file_batches/{batch_id}/files")
async def list_batch_files(
    store_id: str, batch_id: str, request: Request, who: Who, rag: Rag
) -> dict[str, Any]:
    return await _list_files(store_id, batch_id, request, who, rag.db)


async def _list_files(
    store_id: str, batch_id: str | None, request: Request, who: Caller, db: AsyncEngine
) -> dict[str, Any]:
    page = page_request(request.query_params)
    status = request.query_params.get("filter")
    if status and status not in views.FILE_STATUSES:
        raise InvalidRequest(f"filter must be one of {list(views.FILE_STATUSES)}.", param="filter")
    async with db.connect() as conn:
        await stores_db.check_store(conn, who, store_id)
        if batch_id is not None:
            await store_files_db.batch(conn, store_id, batch_id)
        rows, has_more = await store_files_db.list_page(
            conn, who, store_id, page, batch_id=batch_id, status=status
        )
    return views.list_view([views.vector_store_file_view(r) for r in rows], has_more)
