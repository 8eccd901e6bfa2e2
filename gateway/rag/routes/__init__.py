"""The Files and Vector Stores API, as the openai SDK calls it, and the storage of its
objects.

    files.py            /v1/files: upload, list, retrieve, delete, download
    stores.py           /v1/vector_stores: create, retrieve, update, list, delete, search
    store_files.py      /v1/vector_stores/{id}/files and /file_batches
    body.py             JSON request bodies
    views.py            object shapes as OpenAI returns them, ids, request fields (pure)
    paging.py           cursor paging as OpenAI lists do it (pure)
    files_db.py         the SQL on files (their bytes: gateway.rag.ingestion.file_store)
    stores_db.py        the SQL on vector stores
    store_files_db.py   the SQL on store files and batches (attaching queues ingestion)
    listing.py          the one cursor-paged SELECT every list runs

Exports `router`, all retrieval routes (`api.include_router(gateway.rag.routes.router)`,
with a database), and `needs_database`: without one, it answers every Files and Vector
Stores path with a 503 that says what to set, rather than a 404 that would suggest a
wrong URL."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.errors import NeedsDatabase
from gateway.rag.access import NEEDS_DATABASE
from gateway.rag.routes.files import router as files_router
from gateway.rag.routes.store_files import router as store_files_router
from gateway.rag.routes.stores import router as stores_router

router = APIRouter()
router.include_router(files_router)
router.include_router(stores_router)
router.include_router(store_files_router)

needs_database = APIRouter()
_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH"]


@needs_database.api_route("/v1/files", methods=_METHODS, include_in_schema=False)
@needs_database.api_route("/v1/files/{rest:path}", methods=_METHODS, include_in_schema=False)
@needs_database.api_route("/v1/vector_stores", methods=_METHODS, include_in_schema=False)
@needs_database.api_route(
    "/v1/vector_stores/{rest:path}", methods=_METHODS, include_in_schema=False
)
async def without_database() -> None:
    raise NeedsDatabase(NEEDS_DATABASE)
