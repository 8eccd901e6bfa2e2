"""`GET /admin/usage`: totals and per-model/per-day breakdowns for a key, model and window;
`GET /admin/usage/series`: the same events bucketed by hour or day, per model or per key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import DatabaseUnavailable, InvalidRequest
from gateway.keys.admin import require_admin
from gateway.usage.report import (
    BadBound,
    SeriesQuery,
    UsageQuery,
    usage_report,
    usage_series,
)

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])
Q = TypeVar("Q", UsageQuery, SeriesQuery)


@router.get("/usage")
async def get_usage(
    request: Request,
    key_id: Annotated[str | None, Query(max_length=40)] = None,
    model: Annotated[str | None, Query(max_length=512)] = None,
    since: Annotated[str | None, Query(description="ISO date or datetime (UTC if naive)")] = None,
    until: Annotated[str | None, Query(description="ISO date (inclusive) or datetime")] = None,
) -> dict[str, Any]:
    try:
        query = UsageQuery.parse(key_id=key_id, model=model, since=since, until=until)
    except BadBound as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    return await _query(request, usage_report, query)


@router.get("/usage/series")
async def get_usage_series(
    request: Request,
    bucket: Annotated[str, Query(description="hour or day")] = "hour",
    group_by: Annotated[str, Query(description="model or key")] = "model",
    since: Annotated[str | None, Query(description="ISO date or datetime (UTC if naive)")] = None,
    until: Annotated[str | None, Query(description="ISO date (inclusive) or datetime")] = None,
    key_id: Annotated[str | None, Query(max_length=40)] = None,
    model: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    try:
        query = SeriesQuery.parse(
            bucket=bucket, group_by=group_by, since=since, until=until, key_id=key_id, model=model
        )
    except BadBound as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    return await _query(request, usage_series, query)


async def _query(
    request: Request,
    report: Callable[[AsyncConnection, Q], Awaitable[dict[str, Any]]],
    query: Q,
) -> dict[str, Any]:
    """Run one report on the usage database (an outage is the error boundary's 503)."""
    sessions = request.app.state.services.sessions
    if sessions is None:
        raise DatabaseUnavailable(
            "Usage is recorded only when the gateway has a database: set GATEWAY_DATABASE_URL."
        )
    async with sessions() as session:
        return await report(await session.connection(), query)
