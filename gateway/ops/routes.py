"""`/healthz` (the process is alive), `/readyz` (it can serve), `/metrics` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

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
    ready = services.registry.any_healthy()
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "upstreams": upstreams},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(exposition(_services(request).metrics), media_type=CONTENT_TYPE_LATEST)
