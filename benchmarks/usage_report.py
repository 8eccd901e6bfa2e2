"""Usage reports at scale: the console's views and `/admin/usage` over millions of events,
from raw events (before) and from the hourly rollup (after), side by side.

    python -m benchmarks.usage_report [--events 10000000] [--days 60] [--runs 20]
                                      [--raw-runs 5] [--data-dir DIR]

Starts an embedded Postgres (pgserver), migrates a database and loads --events events
spread evenly over the last --days days, in time order as a writer adds them, with
`INSERT ... SELECT FROM generate_series` inside Postgres (20 keys, 4 models, 3 keys
fronting 10 end users each, 2% 429s, 1% 5xx), then
builds the rollup from them with the migration's backfill query (what the writer keeps
up to date batch by batch; tests/usage/test_rollup.py holds the two equal). Timed, p50 and
p99 of --runs (--raw-runs for the slow raw queries), on one connection:
  - console 30-day view: `GET /admin/usage/series?bucket=day&group_by=model`, 30 days;
  - `/admin/usage` for a month (30 days; all keys, one key, one key by end user);
  - console 1-day view: hourly series over 24 h (raw events both times: exact median).
"before" runs the queries main ran (raw events only), "after" the gateway's functions.
--data-dir keeps the loaded server for the next run (loading 10M events takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.usage import rollup
from gateway.usage.partitions import maintain
from gateway.usage.report import SeriesQuery, UsageQuery, usage_report, usage_series

_LOAD = """
INSERT INTO usage_events (request_id, key_id, model, route, upstream, status, prompt_tokens,
    completion_tokens, duration_ms, ttft_ms, streamed, cancelled, created_at, end_user)
SELECT md5(i::text), 'key' || (i % 20),
    (ARRAY['llama-3.1-70b', 'qwen2.5-coder-32b', 'mistral-small', 'bge-m3'])[1 + (i / 7) % 4],
    '/v1/chat/completions', 'http://vllm:8000',
    CASE WHEN i % 50 = 0 THEN 429 WHEN i % 100 = 1 THEN 502 ELSE 200 END,
    200 + (i * 13) % 900, (i * 17) % 400, 800 + (i % 997), 50 + (i * 31) % 500,
    i % 2 = 0, i % 40 = 0,
    :now - :span * (1 - i / CAST(:n AS float8)),
    CASE WHEN i % 20 < 3 THEN 'user' || ((i / 20) % 10) END
FROM generate_series(:lo, :hi) AS i
"""
_ROLLUP = f"INSERT INTO usage_rollup ({rollup.COLUMNS}) {rollup.FROM_EVENTS}"

# The queries main ran before the rollup (gateway/usage/report.py, by_end_user.py at aa24118).
_RAW_REPORT = """
    SELECT GROUPING(model) AS g_model, GROUPING(day) AS g_day, model, day, count(*) AS requests,
        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        count(*) FILTER (WHERE status >= 400) AS errors,
        count(*) FILTER (WHERE status = 429) AS rate_limited,
        count(*) FILTER (WHERE cancelled) AS cancelled
    FROM (SELECT model, prompt_tokens, completion_tokens, status, cancelled,
                 (created_at AT TIME ZONE 'UTC')::date AS day
          FROM usage_events WHERE {where}) AS e
    GROUP BY GROUPING SETS ((), (model), (day))
"""
_RAW_BY_END_USER = """
    SELECT end_user, count(*) AS requests, coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        count(*) FILTER (WHERE status >= 400) AS errors,
        count(*) FILTER (WHERE status = 429) AS rate_limited,
        count(*) FILTER (WHERE cancelled) AS cancelled, max(created_at) AS last_seen
    FROM usage_events WHERE {where} GROUP BY end_user
    ORDER BY coalesce(sum(prompt_tokens), 0) + coalesce(sum(completion_tokens), 0) DESC,
             end_user NULLS LAST LIMIT 1000
"""
_RAW_SERIES = """
    SELECT date_bin(CAST(:step AS interval), created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
            AS bucket, {group} AS grp, count(*) AS requests,
        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        count(*) FILTER (WHERE status = 429) AS rate_limited,
        count(*) FILTER (WHERE status >= 400) AS errors,
        avg(ttft_ms) AS ttft_ms_avg,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms) AS ttft_ms_p50
    FROM usage_events WHERE created_at >= :since AND created_at < :until
    GROUP BY 1, 2 ORDER BY 1, 2
"""

Timed = Callable[[AsyncConnection], Awaitable[Any]]


async def load(url: str, events: int, days: int) -> None:
    engine = create_engine(url, pool_size=1)
    now = datetime.now(UTC)
    # Partitions for every month the events fall in, before they arrive.
    await maintain(engine, now=now - timedelta(days=days))
    await maintain(engine, now=now)
    step = 1_000_000
    started = time.perf_counter()
    async with engine.connect() as conn:
        for lo in range(1, events + 1, step):
            hi = min(events, lo + step - 1)
            params = {"now": now, "span": timedelta(days=days), "lo": lo, "hi": hi, "n": events}
            await conn.execute(text(_LOAD), params)
            await conn.commit()
            print(f"  {hi:>12,} events  {time.perf_counter() - started:6.0f} s", flush=True)
        await conn.execute(text(_ROLLUP))
        await conn.commit()
        sql = "SELECT period, count(*) FROM usage_rollup GROUP BY 1 ORDER BY 1 DESC"
        counted = ", ".join(f"{n:,} {p}s" for p, n in (await conn.execute(text(sql))).all())
        print(f"  rollup: {counted}  {time.perf_counter() - started:6.0f} s")
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))
    await engine.dispose()


def _raw_report(since: datetime, until: datetime, key_id: str | None, people: bool) -> Timed:
    where = "created_at >= :since AND created_at < :until"
    params: dict[str, Any] = {"since": since, "until": until}
    if key_id is not None:
        where += " AND key_id = :key_id"
        params["key_id"] = key_id

    async def run(conn: AsyncConnection) -> Any:
        rows = list((await conn.execute(text(_RAW_REPORT.format(where=where)), params)).all())
        if people:
            sql = text(_RAW_BY_END_USER.format(where=where))
            rows += (await conn.execute(sql, params)).all()
        return rows

    return run


def _raw_series(since: datetime, until: datetime, bucket: str) -> Timed:
    params = {"since": since, "until": until, "step": timedelta(**{f"{bucket}s": 1})}

    async def run(conn: AsyncConnection) -> Any:
        return (await conn.execute(text(_RAW_SERIES.format(group="model")), params)).all()

    return run


def _after_report(query: UsageQuery) -> Timed:
    async def run(conn: AsyncConnection) -> Any:
        return await usage_report(conn, query)

    return run


def _after_series(query: SeriesQuery) -> Timed:
    async def run(conn: AsyncConnection) -> Any:
        return await usage_series(conn, query)

    return run


async def timed(conn: AsyncConnection, run: Timed, runs: int) -> tuple[float, float]:
    await run(conn)  # warm: plans, caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await run(conn)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99


async def measure(url: str, runs: int, raw_runs: int) -> None:
    engine = create_engine(url, pool_size=1)
    now = datetime.now(UTC)
    month, day = now - timedelta(days=30), now - timedelta(days=1)
    cases: list[tuple[str, Timed, Timed]] = [
        (
            "console 30-day view (series, day x model)",
            _raw_series(month, now, "day"),
            _after_series(SeriesQuery("day", "model", month, now)),
        ),
        (
            "/admin/usage, 30 days, all keys",
            _raw_report(month, now, None, False),
            _after_report(UsageQuery(month, now)),
        ),
        (
            "/admin/usage, 30 days, one key",
            _raw_report(month, now, "key5", False),
            _after_report(UsageQuery(month, now, key_id="key5")),
        ),
        (
            "/admin/usage, 30 days, key by end user",
            _raw_report(month, now, "key1", True),
            _after_report(UsageQuery(month, now, key_id="key1", group_by="end_user")),
        ),
        (
            "console 1-day view (series, hour x model)",
            _raw_series(day, now, "hour"),
            _after_series(SeriesQuery("hour", "model", day, now)),
        ),
    ]
    print(f"{'':44} {'before (raw events)':>22} {'after (rollup + edges)':>24}")
    print(f"{'':44} {'p50 ms':>10} {'p99 ms':>11} {'p50 ms':>12} {'p99 ms':>11}")
    async with engine.connect() as conn:
        for name, before, after in cases:
            b50, b99 = await timed(conn, before, raw_runs)
            a50, a99 = await timed(conn, after, runs)
            print(f"{name:44} {b50:10.1f} {b99:11.1f} {a50:12.1f} {a99:11.1f}", flush=True)
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--raw-runs", type=int, default=5)
    parser.add_argument("--data-dir", help="keep the loaded server here and reuse it")
    args = parser.parse_args()

    import pgserver
    from sqlalchemy.engine import make_url

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="usage-report-")
    mode = "stop" if args.data_dir else "delete"
    server = pgserver.get_server(data_dir, cleanup_mode=mode)  # type: ignore[attr-defined]
    try:
        url = make_url(server.get_uri()).set(database="bench").render_as_string(False)
        exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'bench';")
        if "1 row" not in exists:
            server.psql("CREATE DATABASE bench;")
            upgrade(url)
            print(f"loading {args.events:,} events over {args.days} days:")
            await load(url, args.events, args.days)
        await measure(url, args.runs, args.raw_runs)
    finally:
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
