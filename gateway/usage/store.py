"""Writing one batch of usage events in one transaction.

The events go in with COPY (the fastest path psycopg has: see benchmarks/usage_writer.py),
then the batch's per-(key, day|month) sums are added to `usage_counters` in one upsert, its
per-hour and per-day sums to the `usage_rollup` table in another (gateway.usage.rollup), and
`api_keys.last_used_at` moves forward in one UPDATE. The counter and rollup rows are touched
once per batch, never once per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.usage import rollup
from gateway.usage.event import BatchTotals, UsageEvent

EVENT_COLUMNS = (
    "request_id",
    "key_id",
    "model",
    "route",
    "upstream",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "duration_ms",
    "ttft_ms",
    "streamed",
    "cancelled",
    "created_at",
    "end_user",
)
_COPY = f"COPY usage_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
# Binary COPY needs each column's type named up front (varchar and text share a format).
_COPY_TYPES = (
    "text", "text", "text", "text", "text", "int4", "int4", "int4",
    "float8", "float8", "bool", "bool", "timestamptz", "text",
)  # fmt: skip

# unnest() keeps this one statement whatever the batch holds; ORDER BY fixes the order in
# which row locks are taken, so two replicas flushing the same keys cannot deadlock.
_UPSERT_COUNTERS = """
INSERT INTO usage_counters (key_id, period, period_start, tokens, requests)
SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::date[], %s::int8[], %s::int8[])
    AS v(key_id, period, period_start, tokens, requests)
ORDER BY key_id, period, period_start
ON CONFLICT (key_id, period, period_start) DO UPDATE
SET tokens = usage_counters.tokens + excluded.tokens,
    requests = usage_counters.requests + excluded.requests
"""
# Only ever forward: batches from several replicas may commit out of order.
_TOUCH_KEYS = """
UPDATE api_keys AS k SET last_used_at = v.used
FROM unnest(%s::varchar[], %s::timestamptz[]) AS v(id, used)
WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.used)
"""

# model and end_user are also the rollup's unique index key, whose entries Postgres caps at
# ~2.7 kB: 256 characters each stay under it even at 4 bytes a character.
_MAX_TEXT = {"request_id": 128, "key_id": 40, "model": 256, "end_user": 256}


def _clean(value: Any, limit: int | None = None) -> Any:
    # Postgres text cannot hold NUL, and the id columns are bounded: one odd value from a
    # client must not make the whole batch fail on every retry.
    if isinstance(value, str):
        value = value.replace("\x00", "")
        if limit is not None:
            value = value[:limit]
    return value


_INT4 = 2**31 - 1


def _int4(value: int) -> int:
    # Binary COPY would wrap an out-of-range int silently: clamp instead (no real request
    # comes near 2**31 tokens; a bogus count from an engine must not corrupt the sums).
    return max(-_INT4 - 1, min(_INT4, value))


def copy_row(event: UsageEvent) -> tuple[Any, ...]:
    """The event's values in EVENT_COLUMNS order, made safe to COPY."""
    return (
        _clean(event.request_id, _MAX_TEXT["request_id"]),
        _clean(event.key_id, _MAX_TEXT["key_id"]),
        _clean(event.model, _MAX_TEXT["model"]),
        _clean(event.route),
        _clean(event.upstream),
        _int4(event.status),
        _int4(event.prompt_tokens),
        _int4(event.completion_tokens),
        event.duration_ms,
        event.ttft_ms,
        event.streamed,
        event.cancelled,
        event.created_at,
        _clean(event.end_user, _MAX_TEXT["end_user"]),
    )


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows to one array per column, the shape unnest() takes."""
    return [list(col) for col in zip(*rows, strict=True)]


async def write_batch(
    engine: AsyncEngine, events: Sequence[UsageEvent], totals: BatchTotals
) -> None:
    """Insert the events and apply their totals, all or nothing."""
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        pg: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
        async with pg.cursor() as cur:
            rows = [copy_row(event) for event in events]
            await copy_rows(cur, rows)
            if rows:
                await cur.execute(rollup.UPSERT, rollup.upsert_params(rollup.rolled_up(rows)))
            counters = totals.sorted_counters()
            if counters:
                await cur.execute(_UPSERT_COUNTERS, _columns(counters))
            touched = totals.sorted_last_used()
            if touched:
                await cur.execute(_TOUCH_KEYS, _columns(touched))


async def copy_events(cur: psycopg.AsyncCursor[Any], events: Sequence[UsageEvent]) -> None:
    await copy_rows(cur, [copy_row(event) for event in events])


async def copy_rows(cur: psycopg.AsyncCursor[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    """COPY rows made by `copy_row`."""
    async with cur.copy(_COPY) as copy:
        copy.set_types(_COPY_TYPES)
        for row in rows:
            await copy.write_row(row)
