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

from gateway.keys.admin import is_admin_key
from gateway.keys.credentials import presented_key
from gateway.metrics import exposition
from gateway.services import Services

router = APIRouter(include_in_schema=False)


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    services = _services(request)
    ready, details = await _readiness(services)
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready"}
    admin = services.settings.admin_key
    if admin is not None and is_admin_key(admin.get_secret_value(), presented_key(request.scope)):
        body.update(details)
    return JSONResponse(body, status_code=200 if ready else 503)


async def _readiness(services: Services) -> tuple[bool, dict[str, Any]]:
    upstreams: list[dict[str, Any]] = [
        {
            "url": u.url,
            "healthy": u.healthy,
            "models": sorted(u.models),
            "in_flight": u.in_flight,
            "error": u.last_error,
        }
        for u in services.registry.upstreams
    ]
    body: dict[str, Any] = {"upstreams": upstreams}
    ready = services.registry.any_healthy()
    if services.db is not None:
        database = await _database_state(services)
        body["database"] = database
        ready = ready and database["reachable"]
    if services.limiter is not None:
        body["limiter"] = services.limiter.backend_name
    return ready, body


async def _database_state(services: Services) -> dict[str, Any]:
    assert services.db is not None
    try:
        async with asyncio.timeout(2):
            async with services.db.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        return {"reachable": False, "error": type(exc).__name__}
    return {"reachable": True}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(exposition(_services(request).metrics), media_type=CONTENT_TYPE_LATEST)
