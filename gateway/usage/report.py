"""Usage totals and breakdowns, computed in SQL over the hourly rollup and the raw events
of the window's partial hours (gateway.usage.facts): exact, and as fast for a month as for
a day.

One scan with GROUPING SETS yields the totals, the per-model rows and the per-day rows
together. Shared by `GET /admin/usage` and `gateway usage`. `usage_series` buckets the same
usage by hour or day and by model or key for `GET /admin/usage/series` (the console's
charts): short windows from raw events (with an exact TTFT median), longer ones from the
rollup (the median is null there; the mean stays exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.usage.by_end_user import by_end_user
from gateway.usage.facts import facts_sql, split
from gateway.usage.report_rows import counts

DEFAULT_WINDOW = timedelta(days=30)

_QUERY = """
    SELECT
        GROUPING(model) AS g_model,
        GROUPING(day) AS g_day,
        model,
        day,
        coalesce(sum(requests), 0) AS requests,
        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        coalesce(sum(errors), 0) AS errors,
        coalesce(sum(rate_limited), 0) AS rate_limited,
        coalesce(sum(cancelled), 0) AS cancelled
    FROM (
        SELECT model, requests, prompt_tokens, completion_tokens, errors, rate_limited,
               cancelled, (at AT TIME ZONE 'UTC')::date AS day
        FROM ({facts}) AS f
    ) AS e
    GROUP BY GROUPING SETS ((), (model), (day))
"""


class BadBound(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def parse_bound(value: str, *, end: bool = False) -> datetime:
    """An ISO date or datetime as an aware UTC datetime. Naive means UTC; a bare date as the
    upper bound means the whole of that day (until the next midnight)."""
    value = value.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadBound(
            f"`{value}` is not an ISO date or datetime (e.g. 2026-11-01 or 2026-11-01T12:00:00Z)",
            "until" if end else "since",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    since: datetime
    until: datetime
    key_id: str | None = None
    model: str | None = None
    # "end_user": also `by_end_user` (the people behind a trusted front end's key).
    group_by: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        key_id: str | None = None,
        model: str | None = None,
        since: str | None = None,
        until: str | None = None,
        group_by: str | None = None,
        now: datetime | None = None,
    ) -> UsageQuery:
        """Raises BadBound (with the parameter named in its `param`) on a bad window."""
        end = parse_bound(until, end=True) if until else (now or datetime.now(UTC))
        start = parse_bound(since) if since else end - DEFAULT_WINDOW
        if start >= end:
            raise BadBound("`since` must be earlier than `until`.", "since")
        if group_by not in (None, "", "end_user"):
            raise BadBound("`group_by` must be `end_user` (or left out).", "group_by")
        if group_by and not key_id:
            raise BadBound(
                "`group_by=end_user` needs a `key_id`: end users are those of one key.",
                "key_id",
            )
        return cls(
            since=start,
            until=end,
            key_id=key_id or None,
            model=model or None,
            group_by=group_by or None,
        )


async def usage_report(conn: AsyncConnection, query: UsageQuery) -> dict[str, Any]:
    facts, params = facts_sql(split(query.since, query.until), query.key_id, query.model)
    rows = (await conn.execute(text(_QUERY.format(facts=facts)), params)).all()
    totals: dict[str, int] = {}
    by_model: list[dict[str, Any]] = []
    by_day: list[dict[str, Any]] = []
    for row in rows:
        if row.g_model and row.g_day:
            totals = counts(row)
        elif row.g_day:
            by_model.append({"model": row.model, **counts(row)})
        else:
            by_day.append({"date": row.day.isoformat(), **counts(row)})
    by_model.sort(key=lambda r: (-r["total_tokens"], r["model"]))
    by_day.sort(key=lambda r: r["date"])
    extra: dict[str, Any] = {}
    if query.group_by == "end_user":
        extra["by_end_user"] = await by_end_user(conn, facts, params)
    return {
        "object": "usage.summary",
        "key_id": query.key_id,
        "model": query.model,
        "since": query.since.isoformat(),
        "until": query.until.isoformat(),
        **totals,  # the () grouping set yields its row even over no events
        "by_model": by_model,
        "by_day": by_day,
        **extra,
    }


# -- Time series: `GET /admin/usage/series` ------------------------------------------------

BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
GROUPS = {"model": "model", "key": "key_id"}
# Enough points for a chart, few enough that a careless query cannot ask for a million rows.
MAX_BUCKETS = 2000
DEFAULT_SERIES_WINDOW = {"hour": timedelta(hours=24), "day": timedelta(days=30)}

# date_bin with a UTC-midnight origin gives UTC hours and days whatever the session's
# TimeZone; the window's WHERE is on the raw column, so the created_at indexes apply.
_SERIES = """
    SELECT
        date_bin(CAST(:step AS interval), created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
            AS bucket,
        {group} AS grp,
        count(*) AS requests,
        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        count(*) FILTER (WHERE status = 429) AS rate_limited,
        count(*) FILTER (WHERE status >= 400) AS errors,
        avg(ttft_ms) AS ttft_ms_avg,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms) AS ttft_ms_p50
    FROM usage_events
    WHERE {where}
    GROUP BY 1, 2
    ORDER BY 1, 2
"""
# Beyond this, a series reads the rollup: a median cannot be rolled up, so its rows carry
# the exact mean and a null median. The console's one-day view stays raw and exact.
RAW_SERIES_UP_TO = timedelta(hours=48)
_ROLLED_SERIES = """
    SELECT
        date_bin(CAST(:step AS interval), at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
        {group} AS grp,
        sum(requests) AS requests,
        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        sum(rate_limited) AS rate_limited,
        sum(errors) AS errors,
        sum(ttft_ms_sum) / nullif(sum(ttft_count), 0) AS ttft_ms_avg,
        CAST(NULL AS float8) AS ttft_ms_p50
    FROM ({facts}) AS f
    GROUP BY 1, 2
    ORDER BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    bucket: str
    group_by: str
    since: datetime
    until: datetime
    key_id: str | None = None
    model: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        bucket: str = "hour",
        group_by: str = "model",
        since: str | None = None,
        until: str | None = None,
        key_id: str | None = None,
        model: str | None = None,
        now: datetime | None = None,
    ) -> SeriesQuery:
        """Raises BadBound (with the parameter named in its `param`) on a bad query."""
        if bucket not in BUCKETS:
            raise BadBound("`bucket` must be `hour` or `day`.", "bucket")
        if group_by not in GROUPS:
            raise BadBound("`group_by` must be `model` or `key`.", "group_by")
        end = parse_bound(until, end=True) if until else (now or datetime.now(UTC))
        start = parse_bound(since) if since else end - DEFAULT_SERIES_WINDOW[bucket]
        if start >= end:
            raise BadBound("`since` must be earlier than `until`.", "since")
        if (end - start) / BUCKETS[bucket] > MAX_BUCKETS:
            raise BadBound(
                f"The window spans more than {MAX_BUCKETS} {bucket}s: narrow it or use a "
                "larger bucket.",
                "since",
            )
        return cls(bucket, group_by, start, end, key_id or None, model or None)


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _series_sql(query: SeriesQuery) -> tuple[str, dict[str, Any]]:
    group = GROUPS[query.group_by]
    if query.until - query.since > RAW_SERIES_UP_TO:
        window = split(query.since, query.until, days=query.bucket == "day")
        facts, params = facts_sql(window, query.key_id, query.model)
        return _ROLLED_SERIES.format(group=group, facts=facts), params
    where = ["created_at >= :since", "created_at < :until"]
    params = {"since": query.since, "until": query.until}
    if query.key_id is not None:
        where.append("key_id = :key_id")
        params["key_id"] = query.key_id
    if query.model is not None:
        where.append("model = :model")
        params["model"] = query.model
    return _SERIES.format(group=group, where=" AND ".join(where)), params


async def usage_series(conn: AsyncConnection, query: SeriesQuery) -> dict[str, Any]:
    sql, params = _series_sql(query)
    params["step"] = BUCKETS[query.bucket]
    rows = (await conn.execute(text(sql), params)).all()
    data = [
        {
            "bucket": row.bucket.astimezone(UTC).isoformat(),
            "group": row.grp,
            "requests": int(row.requests),
            "prompt_tokens": int(row.prompt_tokens),
            "completion_tokens": int(row.completion_tokens),
            "total_tokens": int(row.prompt_tokens) + int(row.completion_tokens),
            "rate_limited": int(row.rate_limited),
            "errors": int(row.errors),
            "ttft_ms_avg": _ms(row.ttft_ms_avg),
            "ttft_ms_p50": _ms(row.ttft_ms_p50),
        }
        for row in rows
    ]
    return {
        "object": "usage.series",
        "bucket": query.bucket,
        "group_by": query.group_by,
        "key_id": query.key_id,
        "model": query.model,
        "since": query.since.isoformat(),
        "until": query.until.isoformat(),
        "data": data,
    }
