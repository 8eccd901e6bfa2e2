"""`/v1/vector_stores/{id}/files` and `/file_batches`: attaching files, their ingestion state,
attributes and parsed content."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import InvalidRequest, NotFound
from gateway.rag.access import Caller, Rag, Who
from gateway.rag.ingestion.chunking import parse_strategy
from gateway.rag.routes import views
from gateway.rag.routes.body import json_body
from gateway.rag.routes.listing import list_rows
from gateway.rag.routes.paging import page_request
from gateway.rag.routes.stores_db import (
    BATCH_SELECT,
    VSF_SELECT,
    Attachment,
    attach,
    check_store,
    visible_store_file,
)

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
    item = Attachment(
        file_id,
        views.attributes(body.get("attributes")),
        parse_strategy(body.get("chunking_strategy")),
    )
    async with db.begin() as conn:
        await check_store(conn, who, store_id)
        await attach(conn, who, store_id, [item])
        row = await visible_store_file(conn, who, store_id, file_id)
    rag.work_arrived.set()
    return _polled(views.vector_store_file_view(row), row["status"] == "in_progress")


@router.get("/files/{file_id}")
async def retrieve_store_file(
    store_id: str, file_id: str, request: Request, who: Who, rag: Rag
) -> JSONResponse:
    db = rag.db
    async with db.connect() as conn:
        row = await visible_store_file(conn, who, store_id, file_id)
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
    params = {"store": store_id, "file": file_id, "attributes": attributes}
    async with db.begin() as conn:
        await visible_store_file(conn, who, store_id, file_id)
        for table in ("vector_store_files", "chunks"):
            statement = text(
                f"UPDATE {table} SET attributes = :attributes "
                "WHERE vector_store_id = :store AND file_id = :file"
            ).bindparams(bindparam("attributes", type_=JSONB))
            await conn.execute(statement, params)
        row = await visible_store_file(conn, who, store_id, file_id)
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
        await visible_store_file(conn, who, store_id, file_id)
        await conn.execute(
            text("DELETE FROM vector_store_files WHERE vector_store_id = :s AND file_id = :f"),
            {"s": store_id, "f": file_id},
        )
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


@router.get("/files/{file_id}/content")
async def store_file_content(
    store_id: str, file_id: str, request: Request, who: Who, rag: Rag
) -> dict[str, Any]:
    """The parsed text, chunk by chunk (chunks overlap as the chunking strategy says)."""
    db = rag.db
    async with db.connect() as conn:
        await visible_store_file(conn, who, store_id, file_id)
        texts = (
            await conn.execute(
                text(
                    "SELECT text FROM chunks WHERE vector_store_id = :s AND file_id = :f "
                    "ORDER BY idx"
                ),
                {"s": store_id, "f": file_id},
            )
        ).scalars()
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
        await check_store(conn, who, store_id)
        await conn.execute(
            text(
                "INSERT INTO vector_store_file_batches (id, vector_store_id, cancelled) "
                "VALUES (:id, :store, false)"
            ),
            {"id": batch_id, "store": store_id},
        )
        await attach(conn, who, store_id, items, batch_id)
        view = await _batch(conn, store_id, batch_id)
    rag.work_arrived.set()
    return _polled(view, view["status"] == "in_progress")


def _batch_items(body: dict[str, Any]) -> list[Attachment]:
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
                Attachment(
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
    return [Attachment(file_id, attributes, strategy) for file_id in file_ids]


async def _batch(conn: Any, store_id: str, batch_id: str) -> dict[str, Any]:
    sql = f"{BATCH_SELECT} WHERE b.id = :id AND b.vector_store_id = :store"
    row = (await conn.execute(text(sql), {"id": batch_id, "store": store_id})).mappings().first()
    if row is None:
        raise NotFound(
            f"No file batch found with id '{batch_id}'.", param="batch_id", code="batch_not_found"
        )
    return views.batch_view(row)


@router.get("/file_batches/{batch_id}")
async def retrieve_batch(
    store_id: str, batch_id: str, request: Request, who: Who, rag: Rag
) -> JSONResponse:
    db = rag.db
    async with db.connect() as conn:
        await check_store(conn, who, store_id)
        view = await _batch(conn, store_id, batch_id)
    return _polled(view, view["status"] == "in_progress")


@router.post("/file_batches/{batch_id}/cancel")
async def cancel_batch(
    store_id: str, batch_id: str, request: Request, who: Who, rag: Rag
) -> dict[str, Any]:
    """Files not yet ingested become `cancelled`; a worker busy with one drops its work."""
    db = rag.db
    async with db.begin() as conn:
        await check_store(conn, who, store_id)
        await _batch(conn, store_id, batch_id)
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
        return await _batch(conn, store_id, batch_id)


@router.get("/file_batches/{batch_id}/files")
async def list_batch_files(
    store_id: str, batch_id: str, request: Request, who: Who, rag: Rag
) -> dict[str, Any]:
    return await _list_files(store_id, batch_id, request, who, rag.db)


async def _list_files(
    store_id: str, batch_id: str | None, request: Request, who: Caller, db: AsyncEngine
) -> dict[str, Any]:
    page = page_request(request.query_params)
    params: dict[str, Any] = {"store": store_id}
    where = f"f.vector_store_id = :store AND {who.condition('s.owner', params)}"
    # The cursor stays valid when its file changes status under a `filter`.
    cursor = VSF_SELECT.replace("f.*", "f.seq", 1) + f" WHERE f.file_id = :cursor AND {where}"
    if batch_id is not None:
        where += " AND f.batch_id = :batch"
        params["batch"] = batch_id
    status = request.query_params.get("filter")
    if status:
        if status not in views.FILE_STATUSES:
            raise InvalidRequest(
                f"filter must be one of {list(views.FILE_STATUSES)}.", param="filter"
            )
        where += " AND f.status = :status"
        params["status"] = status
    async with db.connect() as conn:
        await check_store(conn, who, store_id)
        if batch_id is not None:
            await _batch(conn, store_id, batch_id)
        rows, has_more = await list_rows(
            conn,
            select=VSF_SELECT,
            where=where,
            params=params,
            page=page,
            seq="f.seq",
            cursor=cursor,
        )
    return views.list_view([views.vector_store_file_view(r) for r in rows], has_more)
