"""Engines: health, group state, models and LoRA adapters, queue and KV cache, and the
engine groups' last switches, from `GET /admin/engines` (refreshed live)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.ui.client import ApiError
from gateway.ui.render import page
from gateway.ui.web import SignedIn, is_htmx

router = APIRouter()

REFRESH_S = 5


@router.get("/ui/engines", response_class=HTMLResponse)
async def engines_page(console: SignedIn) -> Response:
    engines: list[dict[str, Any]] = []
    switches: list[dict[str, Any]] = []
    error = None
    try:
        report = await console.api.get("/admin/engines")
        engines, switches = report["data"], report.get("switches", [])
    except ApiError as exc:
        error = exc.message
    template = "engines_table.html" if is_htmx(console.request) else "engines.html"
    return page(
        console,
        template,
        nav="engines",
        engines=engines,
        switches=switches,
        error=error,
        every=REFRESH_S,
    )
