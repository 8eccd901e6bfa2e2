"""Usage series rows (from `/admin/usage/series`) shaped for uPlot and for a summary table.

Pure. uPlot wants one shared x array and one y array per series; empty buckets are zero
for counts and gaps (None) for time to first token. The busiest groups get their own
line; the rest are summed into "other" so a chart stays readable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

MAX_LINES = 8
OTHER = "other"
STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# (chart id, title, unit, how a row gives its value)
METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("requests", "Requests", "requests", "requests"),
    ("tokens", "Tokens", "tokens", "total_tokens"),
    ("rate_limited", "Rate-limited (429)", "requests", "rate_limited"),
    ("ttft", "Time to first token, median", "ms", "ttft_ms_p50"),
)


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def _epoch_ceil(iso: str) -> int:
    return math.ceil(datetime.fromisoformat(iso).timestamp())


def bucket_axis(since: str, until: str, bucket: str) -> list[int]:
    """Every bucket start in [since, until), aligned like the SQL's date_bin (UTC)."""
    step = int(STEPS[bucket].total_seconds())
    first = _epoch(since) // step * step
    return list(range(first, _epoch_ceil(until), step))


def _label(group: str | None, names: dict[str, str]) -> str:
    if group is None:
        return "(no key)"
    return names.get(group, group)


def top_groups(rows: Iterable[dict[str, Any]], limit: int = MAX_LINES) -> list[str | None]:
    totals: dict[str | None, int] = {}
    for row in rows:
        totals[row["group"]] = totals.get(row["group"], 0) + int(row["requests"])
    ranked = sorted(totals, key=lambda g: (-totals[g], str(g)))
    return ranked[:limit]


def chart_payload(series: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """{"x": [...], "charts": [{"id", "title", "unit", "labels", "values": [[...], ...]}]}."""
    names = names or {}
    rows: list[dict[str, Any]] = series["data"]
    axis = bucket_axis(series["since"], series["until"], series["bucket"])
    position = {t: i for i, t in enumerate(axis)}
    shown = top_groups(rows)
    has_other = len({r["group"] for r in rows}) > len(shown)
    labels = [_label(g, names) for g in shown] + ([OTHER] if has_other else [])
    line = {g: i for i, g in enumerate(shown)}
    # Series over long windows come from the hourly rollup, which has no median: chart the
    # exact mean there rather than nothing.
    median = any(r.get("ttft_ms_p50") is not None for r in rows)
    charts = []
    for chart_id, title, unit, field in METRICS:
        is_time = chart_id == "ttft"
        if is_time and not median:
            title, field = "Time to first token, mean", "ttft_ms_avg"
        blank = None if is_time else 0
        values: list[list[Any]] = [[blank] * len(axis) for _ in labels]
        for row in rows:
            at = position.get(_epoch(row["bucket"]))
            value = row[field]
            if at is None or value is None:
                continue
            index = line.get(row["group"], len(shown))
            if is_time and index == len(shown):
                continue  # a median of medians would mislead; "other" has no TTFT line
            values[index][at] = value if is_time else (values[index][at] or 0) + value
        charts.append(
            {"id": chart_id, "title": title, "unit": unit, "labels": labels, "values": values}
        )
    return {"x": axis, "bucket": series["bucket"], "charts": charts}


def summary(rows: Iterable[dict[str, Any]], names: dict[str, str] | None = None) -> list[Any]:
    """Per group totals over the window (the charts' accessible counterpart)."""
    names = names or {}
    table: dict[str | None, dict[str, Any]] = {}
    for row in rows:
        entry = table.setdefault(
            row["group"],
            {
                "group": _label(row["group"], names),
                "requests": 0,
                "total_tokens": 0,
                "rate_limited": 0,
                "errors": 0,
                "_ttft_sum": 0.0,
                "_ttft_n": 0,
            },
        )
        for field in ("requests", "total_tokens", "rate_limited", "errors"):
            entry[field] += int(row[field])
        if row.get("ttft_ms_avg") is not None:
            # weight each bucket's mean by its requests: close enough for an overview
            entry["_ttft_sum"] += float(row["ttft_ms_avg"]) * int(row["requests"])
            entry["_ttft_n"] += int(row["requests"])
    result = []
    for entry in sorted(table.values(), key=lambda e: (-e["requests"], e["group"])):
        n = entry.pop("_ttft_n")
        total = entry.pop("_ttft_sum")
        entry["ttft_ms_avg"] = round(total / n, 1) if n else None
        result.append(entry)
    return result
