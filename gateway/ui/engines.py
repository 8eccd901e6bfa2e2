"""Engines: health, models, queue and KV cache, from `GET /admin/engines` (refreshed live)."""

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
    error = None
    try:
        engines = (await console.api.get("/admin/engines"))["data"]
    except ApiError as exc:
        error = exc.message
    template = "engines_table.html" if is_htmx(console.request) else "engines.html"
    return page(console, template, nav="engines", engines=engines, error=error, every=REFRESH_S)
