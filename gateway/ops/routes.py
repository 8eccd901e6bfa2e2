"""`/healthz` (the process is alive), `/readyz` (it can serve), `/metrics` (Prometheus).

`/readyz` tells anyone whether the gateway is ready (the status code and
`{"status": ...}`, all a load balancer or `gateway up` needs); the parts' details (engine
URLs and errors, models, database, limiter backend) only to the admin key: they map the
network behind the gateway for a stranger.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys.admin import is_admin_key
from gateway.keys.credentials import presented_key
from gateway.metrics import exposition
from gateway.state import AppState, StateDep

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request, state: StateDep) -> JSONResponse:
    ready, details = await _readiness(state)
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready"}
    admin = state.settings.admin_key
    if admin is not None and is_admin_key(admin.get_secret_value(), presented_key(request.scope)):
        body.update(details)
    return JSONResponse(body, status_code=200 if ready else 503)


async def _readiness(state: AppState) -> tuple[bool, dict[str, Any]]:
    registry = state.engines.registry
    upstreams: list[dict[str, Any]] = [
        {
            "url": u.url,
            "healthy": u.healthy,
            "models": sorted(u.models),
            "in_flight": u.in_flight,
            "error": u.last_error,
        }
        for u in registry.upstreams
    ]
    body: dict[str, Any] = {"upstreams": upstreams}
    ready = registry.any_healthy()
    if state.storage is not None:
        database = await _database_state(state.storage.db)
        body["database"] = database
        ready = ready and database["reachable"]
        body["limiter"] = state.storage.limiter.backend_name
    return ready, body


async def _database_state(db: AsyncEngine) -> dict[str, Any]:
    try:
        async with asyncio.timeout(2):
            async with db.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        return {"reachable": False, "error": type(exc).__name__}
    return {"reachable": True}


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    return Response(exposition(state.metrics), media_type=CONTENT_TYPE_LATEST)
