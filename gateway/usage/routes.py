"""`GET /admin/usage`: totals and per-model/per-day breakdowns for a key, model and window;
`GET /admin/usage/series`: the same events bucketed by hour or day, per model or per key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import InvalidRequest, NeedsDatabase
from gateway.http.app_state import attribute
from gateway.keys.require_admin import require_admin
from gateway.usage.report import (
    BadBound,
    SeriesQuery,
    UsageQuery,
    usage_report,
    usage_series,
)

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])
Q = TypeVar("Q", UsageQuery, SeriesQuery)


@dataclass(frozen=True, slots=True)
class UsageReports:
    """What these routes read from, put on `app.state.usage_reports` by the lifespan."""

    db: AsyncEngine


def usage_reports(request: Request) -> UsageReports:
    found = attribute(request.app.state, "usage_reports", UsageReports)
    if found is None:
        raise NeedsDatabase(
            "Usage is recorded only when the gateway has a database: set GATEWAY_DATABASE_URL."
        )
    return found


Reports = Annotated[UsageReports, Depends(usage_reports)]


@router.get("/usage")
async def get_usage(
    reports: Reports,
    key_id: Annotated[str | None, Query(max_length=40)] = None,
    model: Annotated[str | None, Query(max_length=512)] = None,
    since: Annotated[str | None, Query(description="ISO date or datetime (UTC if naive)")] = None,
    until: Annotated[str | None, Query(description="ISO date (inclusive) or datetime")] = None,
    group_by: Annotated[
        str | None, Query(description="end_user: per person behind the key", max_length=20)
    ] = None,
) -> dict[str, Any]:
    try:
        query = UsageQuery.parse(
            key_id=key_id, model=model, since=since, until=until, group_by=group_by
        )
    except BadBound as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    return await _query(reports.db, usage_report, query)


@router.get("/usage/series")
async def get_usage_series(
    reports: Reports,
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
    return await _query(reports.db, usage_series, query)


async def _query(
    db: AsyncEngine,
    report: Callable[[AsyncConnection, Q], Awaitable[dict[str, Any]]],
    query: Q,
) -> dict[str, Any]:
    """Run one report on the usage database (an outage is the error boundary's 503)."""
    async with db.connect() as conn:
        return await report(conn, query)
