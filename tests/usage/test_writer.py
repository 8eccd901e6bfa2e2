"""The batch writer against the embedded Postgres: counts, batching, outages, bounds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.engine import create_engine
from gateway.metrics import Metrics
from tests.conftest import _with_db
from tests.usage.conftest import WriterFactory, add_key, event, scalar, wait_for


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_every_recorded_event_is_written_on_stop_with_matching_counters(
    db: AsyncEngine, make_writer: WriterFactory, metrics: Metrics
) -> None:
    for key_id in ("k1", "k2"):
        await add_key(db, key_id)
    writer = make_writer(db, usage_batch_size=50)
    latest = datetime.now(UTC)
    events = [event("k1" if i % 3 else "k2", prompt=i, completion=2 * i) for i in range(1, 301)]
    events.append(event(None, prompt=7, completion=7))  # an anonymous request: no counters
    events[-2].created_at = latest = datetime.now(UTC) + timedelta(seconds=1)
    for e in events:
        assert writer.record(e)
    await writer.stop()

    assert await scalar(db, "SELECT count(*) FROM usage_events") == len(events)
    assert await scalar(db, "SELECT count(DISTINCT request_id) FROM usage_events") == len(events)
    for key_id in ("k1", "k2"):
        mine = [e for e in events if e.key_id == key_id]
        for period in ("day", "month"):
            async with db.connect() as conn:
                tokens, requests = (
                    await conn.execute(
                        text(
                            "SELECT sum(tokens), sum(requests) FROM usage_counters "
                            "WHERE key_id = :k AND period = :p"
                        ),
                        {"k": key_id, "p": period},
                    )
                ).one()
            assert tokens == sum(e.total_tokens for e in mine)
            assert requests == len(mine)
    used = await scalar(db, "SELECT last_used_at FROM api_keys WHERE id = :k", k=events[-2].key_id)
    assert used == latest
    assert writer.unflushed == {}
    assert sample(metrics, "gateway_usage_events_written_total") == len(events)


async def test_events_are_written_in_few_transactions_off_the_request_path(
    db: AsyncEngine, make_writer: WriterFactory, metrics: Metrics
) -> None:
    writer = make_writer(db, usage_batch_size=1000)
    for _ in range(999):
        writer.record(event())
    await asyncio.sleep(0.05)
    # Below one batch and before the interval: nothing touched the database yet.
    assert await scalar(db, "SELECT count(*) FROM usage_events") == 0
    for _ in range(1501):
        writer.record(event())
    # A full batch wakes the writer without waiting for the (60 s) interval.
    await wait_for(lambda: _count_at_least(db, 2000))
    await writer.stop()
    assert await scalar(db, "SELECT count(*) FROM usage_events") == 2500
    assert writer.flushes == 3
    assert sample(metrics, "gateway_usage_flush_duration_seconds_count") == 3
    # Counters hold one row per key and period, however many events went in.
    assert await scalar(db, "SELECT count(*) FROM usage_counters") == 2


async def test_the_interval_flushes_a_trickle(db: AsyncEngine, make_writer: WriterFactory) -> None:
    writer = make_writer(db, usage_flush_interval_s=0.1)
    writer.record(event())
    await wait_for(lambda: _count_at_least(db, 1))
    writer.record(event())
    await wait_for(lambda: _count_at_least(db, 2))


async def test_events_wait_out_a_database_outage_and_are_written_after(
    pg_server: Any, make_writer: WriterFactory, metrics: Metrics
) -> None:
    # A database that does not exist yet: every connection fails until it is created.
    name = "gw_outage_" + datetime.now(UTC).strftime("%H%M%S%f")
    url = _with_db(pg_server.get_uri(), name)
    engine = create_engine(url, pool_size=1)
    writer = make_writer(engine, usage_flush_interval_s=0.05)
    for _ in range(20):
        writer.record(event(prompt=3, completion=4))
    await asyncio.sleep(0.4)
    assert sample(metrics, "gateway_usage_flush_failures_total") >= 2
    assert writer.buffered == 20
    assert writer.unflushed[("k1", "day", datetime.now(UTC).date())] == 140

    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE gw_template;")
    await wait_for(lambda: _count_at_least(engine, 20))
    await writer.stop()
    assert await scalar(engine, "SELECT count(*) FROM usage_events") == 20
    assert await scalar(engine, "SELECT sum(tokens) FROM usage_counters") == 2 * 140
    assert sample(metrics, "gateway_usage_events_dropped_total", reason="buffer_full") == 0
    await engine.dispose()


async def test_the_buffer_is_bounded_and_drops_are_counted(
    pg_server: Any, make_writer: WriterFactory, metrics: Metrics
) -> None:
    engine = create_engine(_with_db(pg_server.get_uri(), "gw_never_created"), pool_size=1)
    writer = make_writer(
        engine, usage_buffer_max=10, usage_flush_interval_s=0.05, stop_timeout_s=0.2
    )
    accepted = [writer.record(event()) for _ in range(15)]
    assert accepted == [True] * 10 + [False] * 5
    assert writer.buffered == 10
    assert sample(metrics, "gateway_usage_events_dropped_total", reason="buffer_full") == 5
    await asyncio.sleep(0.1)  # a failed flush attempt reports the buffer's size
    assert sample(metrics, "gateway_usage_events_buffered") == 10
    # Stopping while the database is still away gives up after the timeout, and says so.
    await writer.stop()
    assert sample(metrics, "gateway_usage_events_dropped_total", reason="shutdown") == 10
    await engine.dispose()


async def test_an_event_postgres_rejects_is_dropped_alone(
    db: AsyncEngine, make_writer: WriterFactory, metrics: Metrics
) -> None:
    writer = make_writer(db, usage_batch_size=100)
    events = [event() for _ in range(9)]
    events.insert(4, event(model="lone surrogate \udcff"))  # not encodable as UTF-8
    for e in events:
        writer.record(e)
    await writer.stop()
    assert await scalar(db, "SELECT count(*) FROM usage_events") == 9
    assert sample(metrics, "gateway_usage_events_dropped_total", reason="rejected") == 1
    assert await scalar(db, "SELECT sum(tokens) FROM usage_counters WHERE period = 'day'") == 135


async def test_odd_values_are_cleaned_rather_than_poisoning_a_batch(
    db: AsyncEngine, make_writer: WriterFactory
) -> None:
    writer = make_writer(db)
    writer.record(event())
    odd = event(model="nul\x00inside", prompt=2**40)
    odd.request_id = "r" * 500
    writer.record(odd)
    await writer.stop()
    assert await scalar(db, "SELECT count(*) FROM usage_events") == 2
    assert await scalar(db, "SELECT max(length(request_id)) FROM usage_events") == 128
    assert await scalar(db, "SELECT max(prompt_tokens) FROM usage_events") == 2**31 - 1


async def _count_at_least(engine: Any, n: int) -> bool:
    try:
        return bool(await scalar(engine, "SELECT count(*) FROM usage_events") >= n)
    except Exception:
        return False
