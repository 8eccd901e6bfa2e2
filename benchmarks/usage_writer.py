"""How fast usage events reach Postgres: insert methods compared, then the writer end to end.

    python -m benchmarks.usage_writer [--batch 1000] [--batches 30] [--seconds 10] [--keys 50]

Starts an embedded Postgres (pgserver) in a temporary directory, migrates a database and
measures, on the same batches of events:
  1. one batch per transaction through binary COPY, text COPY, and executemany of an INSERT;
  2. `UsageWriter.record()` cost per call on the request path;
  3. the writer's rate draining a full buffer, and while a producer in the same event loop
     records faster than it can write for --seconds (counters and last_used_at included).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import Settings
from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.metrics import Metrics
from gateway.usage.event import UsageEvent, aggregate
from gateway.usage.store import EVENT_COLUMNS, copy_events, copy_row, write_batch

_COLUMNS = ", ".join(EVENT_COLUMNS)
_PLACEHOLDERS = ", ".join(["%s"] * len(EVENT_COLUMNS))
_INSERT = f"INSERT INTO usage_events ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608 (constants)


def make_events(n: int, keys: int) -> list[UsageEvent]:
    now = datetime.now(UTC)
    return [
        UsageEvent(
            request_id=uuid.uuid4().hex,
            key_id=f"key{i % keys}",
            model="llama-3.1-70b-instruct-awq",
            route="/v1/chat/completions",
            status=200,
            upstream="http://vllm:8000",
            prompt_tokens=512 + i % 100,
            completion_tokens=128 + i % 50,
            duration_ms=1234.5,
            ttft_ms=210.0,
            streamed=bool(i % 2),
            created_at=now,
        )
        for i in range(n)
    ]


async def _raw(engine: AsyncEngine) -> Any:
    conn = await engine.connect()
    raw = await conn.get_raw_connection()
    return conn, raw.driver_connection


async def insert_methods(engine: AsyncEngine, batch: int, batches: int, keys: int) -> None:
    events = make_events(batch, keys)
    totals = aggregate(events)
    rows = [copy_row(e) for e in events]
    conn, pg = await _raw(engine)

    async def text_copy(cur: Any) -> None:
        sql = f"COPY usage_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
        async with cur.copy(sql) as copy:
            for row in rows:
                await copy.write_row(row)

    async def binary_copy(cur: Any) -> None:
        await copy_events(cur, events)

    async def executemany(cur: Any) -> None:
        await cur.executemany(_INSERT, rows)

    methods = {
        "binary COPY": binary_copy,
        "text COPY": text_copy,
        "executemany INSERT": executemany,
    }
    for name, method in methods.items():
        started = time.perf_counter()
        for _ in range(batches):
            async with pg.transaction(), pg.cursor() as cur:
                await method(cur)
        elapsed = time.perf_counter() - started
        print(f"  {name:<28} {batch * batches / elapsed:>10,.0f} events/s (events only)")
    await conn.close()
    started = time.perf_counter()
    for _ in range(batches):
        await write_batch(engine, events, totals)
    elapsed = time.perf_counter() - started
    print(
        f"  {'COPY + counters, rollup, keys':<28} {batch * batches / elapsed:>10,.0f} events/s"
        f"  ({elapsed / batches * 1000:.1f} ms per {batch}-event transaction)"
    )


def record_cost(engine: AsyncEngine, keys: int) -> None:
    from gateway.usage.writer import UsageWriter

    writer = UsageWriter(engine, Settings(usage_buffer_max=10**7), Metrics())
    events = make_events(200_000, keys)
    started = time.perf_counter()
    for e in events:
        writer.record(e)
    per_call = (time.perf_counter() - started) / len(events)
    print(f"  record(): {per_call * 1e9:,.0f} ns per call (never awaits, never touches the DB)")


async def drain_alone(engine: AsyncEngine, n: int, keys: int, batch: int) -> None:
    from gateway.usage.writer import UsageWriter

    writer = UsageWriter(engine, Settings(usage_batch_size=batch, usage_buffer_max=n), Metrics())
    for e in make_events(n, keys):
        writer.record(e)
    started = time.perf_counter()
    await writer.stop()  # writes everything buffered, batch by batch
    elapsed = time.perf_counter() - started
    print(f"  drain {n:,} buffered events: {n / elapsed:,.0f} events/s")


async def sustained(engine: AsyncEngine, seconds: float, keys: int, batch: int) -> None:
    from gateway.usage.writer import UsageWriter

    metrics = Metrics()
    settings = Settings(usage_batch_size=batch, usage_buffer_max=100_000)
    writer = UsageWriter(engine, settings, metrics)
    writer.start()
    pool = make_events(500, keys)
    accepted = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        accepted += sum(writer.record(e) for e in pool)
        await asyncio.sleep(0)  # a request handler yields to the loop at least this often
    produced_for = time.perf_counter() - started
    written = metrics.registry.get_sample_value("gateway_usage_events_written_total") or 0
    dropped = metrics.registry.get_sample_value(
        "gateway_usage_events_dropped_total", {"reason": "buffer_full"}
    )
    await writer.stop()
    print(
        f"  overloaded for {produced_for:.1f} s (producer unpaced, same loop):"
        f" {written / produced_for:,.0f} events/s written,"
        f" {accepted:,} accepted, {dropped or 0:,.0f} dropped at the 100k bound"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--keys", type=int, default=50)
    args = parser.parse_args()

    import pgserver

    with tempfile.TemporaryDirectory() as tmp:
        server = pgserver.get_server(tmp, cleanup_mode="stop")  # type: ignore[attr-defined]
        server.psql("CREATE DATABASE bench;")
        from sqlalchemy.engine import make_url

        url = make_url(server.get_uri()).set(database="bench").render_as_string(False)
        upgrade(url)
        engine = create_engine(url, pool_size=2)
        try:
            print(f"insert methods, {args.batches} transactions of {args.batch} events:")
            await insert_methods(engine, args.batch, args.batches, args.keys)
            print("request path:")
            record_cost(engine, args.keys)
            print(f"writer (batch {args.batch}):")
            await drain_alone(engine, 200_000, args.keys, args.batch)
            await sustained(engine, args.seconds, args.keys, args.batch)
        finally:
            await engine.dispose()
            server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
