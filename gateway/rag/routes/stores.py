"""`/v1/vector_stores`: create, retrieve, update, list, delete, and search."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from gateway.errors import InvalidRequest
from gateway.http.context import CONTEXT_KEY
from gateway.rag.access import Rag, Who, request_id
from gateway.rag.ingestion.chunking import parse_strategy
from gateway.rag.metering import SEARCH_ROUTE, Payer
from gateway.rag.routes import store_files_db, stores_db, views
from gateway.rag.routes.body import json_body
from gateway.rag.routes.paging import page_request
from gateway.rag.search.hybrid import search_stores

router = APIRouter(prefix="/v1/vector_stores")


def _now() -> datetime:
    return datetime.now(UTC)


@router.post("")
async def create_store(request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    db = rag.db
    body = await json_body(request)
    strategy = parse_strategy(body.get("chunking_strategy"))
    file_ids = views.string_list(body.get("file_ids"), "file_ids", max_items=500)
    store_id = views.new_id("vs_")
    name = views.optional_str(body.get("name"), "name", 256) or ""
    description = views.optional_str(body.get("description"), "description")
    metadata = views.metadata(body.get("metadata"))
    expires_after = views.expires_after(body.get("expires_after"))
    async with db.begin() as conn:
        await stores_db.create(
            conn,
            store_id,
            who.owner,
            name=name,
            description=description,
            metadata=metadata,
            expires_after=expires_after,
        )
        files = [store_files_db.Attachment(f, {}, strategy) for f in file_ids]
        await store_files_db.attach(conn, who, store_id, files)
        row = await stores_db.visible_store(conn, who, store_id)
    if file_ids:
        rag.work_arrived.set()
    return views.store_view(row, _now())


@router.get("")
async def list_stores(request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    db = rag.db
    page = page_request(request.query_params)
    async with db.connect() as conn:
        rows, has_more = await stores_db.list_page(conn, who, page)
    now = _now()
    return views.list_view([views.store_view(row, now) for row in rows], has_more)


@router.get("/{store_id}")
async def retrieve_store(store_id: str, request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    db = rag.db
    async with db.connect() as conn:
        return views.store_view(await stores_db.visible_store(conn, who, store_id), _now())


@router.post("/{store_id}")
async def update_store(store_id: str, request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    db = rag.db
    body = await json_body(request)
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = views.optional_str(body["name"], "name", 256) or ""
    if "metadata" in body:
        changes["metadata"] = views.metadata(body["metadata"])
    if "expires_after" in body:
        changes["expires_after"] = views.expires_after(body["expires_after"])
    async with db.begin() as conn:
        await stores_db.update(conn, who, store_id, changes)
        row = await stores_db.visible_store(conn, who, store_id)
    return views.store_view(row, _now())


@router.delete("/{store_id}")
async def delete_store(store_id: str, request: Request, who: Who, rag: Rag) -> dict[str, Any]:
    """The store, its file links and chunks go; the files themselves stay."""
    db = rag.db
    async with db.begin() as conn:
        await stores_db.delete(conn, who, store_id)
    return {"id": store_id, "object": "vector_store.deleted", "deleted": True}


@router.post("/{store_id}/search")
async def search(store_id: str, request: Request, rag: Rag) -> dict[str, Any]:
    key = await rag.guard.authenticate(request.scope)
    context = request.scope.get(CONTEXT_KEY)
    if context is not None and key is not None:
        context.key_id = key.id
    body = await json_body(request)
    query = body.get("query")
    queries = [query] if isinstance(query, str) else query
    if (
        not isinstance(queries, list)
        or not queries
        or not all(isinstance(q, str) and q.strip() for q in queries)
    ):
        raise InvalidRequest("query must be a non-empty string or array of strings.", param="query")
    limit = body.get("max_num_results", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 50:
        raise InvalidRequest("max_num_results must be between 1 and 50.", param="max_num_results")
    ranking = body.get("ranking_options") or {}
    threshold = ranking.get("score_threshold") if isinstance(ranking, dict) else None
    if threshold is not None and (
        not isinstance(threshold, int | float) or not 0 <= threshold <= 1
    ):
        raise InvalidRequest(
            "score_threshold must be between 0 and 1.", param="ranking_options.score_threshold"
        )
    hits = await search_stores(
        rag,
        Payer(key, SEARCH_ROUTE, request_id(request), answers_client=True),
        [store_id],
        "\n".join(queries),
        max_results=limit,
        filters=body.get("filters"),
        score_threshold=threshold,
    )
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": [
            {
                "file_id": hit.file_id,
                "filename": hit.filename,
                "score": hit.score,
                "attributes": hit.attributes,
                "content": [{"type": "text", "text": hit.text}],
            }
            for hit in hits
        ],
        "has_more": False,
        "next_page": None,
    }
