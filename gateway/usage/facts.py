"""The rows a usage report sums: the rollup for a window's whole hours, raw events for its
partial edge hours, so a month reads ~720 hourly groups instead of millions of events and
the totals stay exact to the microsecond of `since` and `until`.

`facts_sql` gives one subquery with the same columns either way (`at`, key_id, model,
end_user, requests, prompt_tokens, completion_tokens, errors, rate_limited, cancelled,
ttft_ms_sum, ttft_count, last_at); reports aggregate it with sum() and max().
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

HOUR = timedelta(hours=1)

_ROLLUP = """
    SELECT hour AS at, key_id, model, end_user, requests, prompt_tokens, completion_tokens,
           errors, rate_limited, cancelled, ttft_ms_sum, ttft_count, last_at
    FROM usage_hourly
    WHERE hour >= :h_from AND hour < :h_to{filters}"""
_RAW = """
    SELECT created_at AS at, key_id, model, end_user, 1 AS requests,
           prompt_tokens, completion_tokens,
           (status >= 400)::int AS errors, (status = 429)::int AS rate_limited,
           cancelled::int AS cancelled, coalesce(ttft_ms, 0) AS ttft_ms_sum,
           (ttft_ms IS NOT NULL)::int AS ttft_count, created_at AS last_at
    FROM usage_events
    WHERE created_at >= :{lo} AND created_at < :{hi}{filters}"""


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Split:
    """[since, h_from) and [h_to, until) from raw events, [h_from, h_to) from the rollup."""

    since: datetime
    h_from: datetime
    h_to: datetime
    until: datetime

    @property
    def has_whole_hours(self) -> bool:
        return self.h_from < self.h_to


def split(since: datetime, until: datetime) -> Split:
    """`since`/`until` are aware UTC datetimes (whole UTC hours are whole local hours only
    in zones with whole-hour offsets; the bounds are normalised to UTC first)."""
    h_from = _floor_hour(since)
    if h_from < since:
        h_from += HOUR
    h_to = _floor_hour(until)
    if h_to <= h_from:  # no whole hour inside: everything from raw events
        return Split(since, until, until, until)
    return Split(since, h_from, h_to, until)


def facts_sql(window: Split, key_id: str | None, model: str | None) -> tuple[str, dict[str, Any]]:
    """The subquery (without parentheses) and its parameters."""
    filters = ""
    params: dict[str, Any] = {
        "since": window.since,
        "h_from": window.h_from,
        "h_to": window.h_to,
        "until": window.until,
    }
    # Plain equalities, and only for the filters given: they let the planner use the
    # (key_id, hour) and (key_id, created_at) indexes.
    if key_id is not None:
        filters += " AND key_id = :key_id"
        params["key_id"] = key_id
    if model is not None:
        filters += " AND model = :model"
        params["model"] = model
    parts = []
    if window.since < window.h_from:
        parts.append(_RAW.format(lo="since", hi="h_from", filters=filters))
    if window.has_whole_hours:
        parts.append(_ROLLUP.format(filters=filters))
    if window.h_to < window.until:
        parts.append(_RAW.format(lo="h_to", hi="until", filters=filters))
    return "\n    UNION ALL".join(parts), params
