"""All retrieval routes: `api.include_router(gateway.rag.routes.router)`."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.rag.files_routes import router as files_router
from gateway.rag.store_files_routes import router as store_files_router
from gateway.rag.stores_routes import router as stores_router

router = APIRouter()
router.include_router(files_router)
router.include_router(stores_router)
router.include_router(store_files_router)
