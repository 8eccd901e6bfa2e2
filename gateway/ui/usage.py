"""Usage over time, per model or per key, from `GET /admin/usage/series`."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.ui.charts import chart_payload, summary
from gateway.ui.client import ApiError
from gateway.ui.render import page
from gateway.ui.web import SignedIn

router = APIRouter()

WINDOWS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "365d": timedelta(days=365),
}
# Hourly points beyond a month make a chart nobody can read (and a big page).
HOURLY_UP_TO = timedelta(days=30)


def choose(params: dict[str, str]) -> dict[str, str]:
    """The page's filters, defaulted and made consistent."""
    window = params.get("window", "")
    window = window if window in WINDOWS else "24h"
    bucket = params.get("bucket", "")
    if bucket not in ("hour", "day") or (bucket == "hour" and WINDOWS[window] > HOURLY_UP_TO):
        bucket = "hour" if WINDOWS[window] <= timedelta(days=7) else "day"
    group_by = "key" if params.get("group_by") == "key" else "model"
    return {
        "window": window,
        "bucket": bucket,
        "group_by": group_by,
        "key_id": params.get("key_id", "")[:40],
        "model": params.get("model", "")[:512],
    }


@router.get("/ui/usage", response_class=HTMLResponse)
async def usage_page(console: SignedIn) -> Response:
    filters = choose(dict(console.request.query_params))
    # `until` is left to the gateway (its now): events from the last instant stay in.
    since = datetime.now(UTC) - WINDOWS[filters["window"]]
    error = None
    keys: list[dict[str, Any]] = []
    models: list[str] = []
    series: dict[str, Any] | None = None
    try:
        keys = (await console.api.get("/admin/keys"))["data"]
        models = sorted(m["id"] for m in (await console.api.get("/v1/models"))["data"])
        series = await console.api.get(
            "/admin/usage/series",
            bucket=filters["bucket"],
            group_by=filters["group_by"],
            since=since.isoformat(),
            key_id=filters["key_id"],
            model=filters["model"],
        )
    except ApiError as exc:
        error = exc.message
    names = {k["id"]: f"{k['name']} ({k['id']})" for k in keys}
    # Legends are short: a key's name, unless two keys share it.
    counted = Counter(k["name"] for k in keys)
    short = {k["id"]: k["name"] if counted[k["name"]] == 1 else names[k["id"]] for k in keys}
    rows = series["data"] if series else []
    return page(
        console,
        "usage.html",
        nav="usage",
        filters=filters,
        windows=list(WINDOWS),
        keys=keys,
        models=models,
        error=error,
        payload=chart_payload(series, short) if series else None,
        table=summary(rows, names),
        has_data=bool(rows),
    )
