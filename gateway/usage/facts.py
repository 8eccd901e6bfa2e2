"""The rows a usage report sums: the rollup's days for a window's whole UTC days, its hours
for the whole hours around them, and raw events only for the partial hours at the edges.
A month then reads ~30 daily rows per (key, model, end user) and at most a few hours of
events instead of millions of events, and the totals stay exact to the microsecond of
`since` and `until`.

`facts_sql` gives one subquery with the same columns from every source (`at`, key_id,
model, end_user, requests, prompt_tokens, completion_tokens, errors, rate_limited,
cancelled, ttft_ms_sum, ttft_count, last_at); reports aggregate it with sum() and max().
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

_ROLLUP = """
    SELECT start AS at, key_id, model, end_user, requests, prompt_tokens, completion_tokens,
           errors, rate_limited, cancelled, ttft_ms_sum, ttft_count, last_at
    FROM usage_rollup
    WHERE period = '{period}' AND start >= :{lo} AND start < :{hi}{filters}"""
_RAW = """
    SELECT created_at AS at, key_id, model, end_user, 1 AS requests,
           prompt_tokens, completion_tokens,
           (status >= 400)::int AS errors, (status = 429)::int AS rate_limited,
           cancelled::int AS cancelled, coalesce(ttft_ms, 0) AS ttft_ms_sum,
           (ttft_ms IS NOT NULL)::int AS ttft_count, created_at AS last_at
    FROM usage_events
    WHERE created_at >= :{lo} AND created_at < :{hi}{filters}"""


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    if step == DAY:
        floor = floor.replace(hour=0)
    return floor if floor == moment else floor + step


def _floor(moment: datetime, step: timedelta) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor.replace(hour=0) if step == DAY else floor


@dataclass(frozen=True, slots=True)
class Split:
    """Raw events in [since, h_from) and [h_to, until); rollup hours in [h_from, d_from)
    and [d_to, h_to); rollup days in [d_from, d_to). Empty ranges have equal ends."""

    since: datetime
    h_from: datetime
    d_from: datetime
    d_to: datetime
    h_to: datetime
    until: datetime

    def ranges(self) -> list[tuple[str, str, str]]:
        """(source, lower bound's name, upper bound's name) of each non-empty range."""
        bounds = [
            ("raw", "since", "h_from"),
            ("hour", "h_from", "d_from"),
            ("day", "d_from", "d_to"),
            ("hour", "d_to", "h_to"),
            ("raw", "h_to", "until"),
        ]
        return [(src, lo, hi) for src, lo, hi in bounds if getattr(self, lo) < getattr(self, hi)]


def split(since: datetime, until: datetime, *, days: bool = True) -> Split:
    """`since`/`until` are aware datetimes. `days=False` keeps to hours (a series in
    hourly buckets cannot take a day's row)."""
    # Whole hours and days are UTC ones: an offset like +05:30 must not shift them.
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    h_from, h_to = _ceil(since, HOUR), _floor(until, HOUR)
    if h_to <= h_from:  # no whole hour inside: everything from raw events
        return Split(since, until, until, until, until, until)
    d_from, d_to = _ceil(h_from, DAY), _floor(h_to, DAY)
    if not days or d_to <= d_from:
        return Split(since, h_from, h_to, h_to, h_to, until)
    return Split(since, h_from, d_from, d_to, h_to, until)


def facts_sql(window: Split, key_id: str | None, model: str | None) -> tuple[str, dict[str, Any]]:
    """The subquery (without parentheses) and its parameters."""
    filters = ""
    params: dict[str, Any] = {
        name: getattr(window, name)
        for name in ("since", "h_from", "d_from", "d_to", "h_to", "until")
    }
    # Plain equalities, and only for the filters given: they let the planner use the
    # (key_id, period, start) and (key_id, created_at) indexes.
    if key_id is not None:
        filters += " AND key_id = :key_id"
        params["key_id"] = key_id
    if model is not None:
        filters += " AND model = :model"
        params["model"] = model
    parts = [
        _RAW.format(lo=lo, hi=hi, filters=filters)
        if source == "raw"
        else _ROLLUP.format(period=source, lo=lo, hi=hi, filters=filters)
        for source, lo, hi in window.ranges()
    ]
    return "\n    UNION ALL".join(parts), params
