"""Quota checks: counters from Postgres plus this process's unflushed tokens, from memory."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.engine import create_engine
from gateway.errors import QuotaExceeded
from gateway.keys.record import KeyRecord
from gateway.usage.event import resets_at
from gateway.usage.quota import QuotaChecker
from tests.conftest import _with_db
from tests.usage.conftest import WriterFactory, event

NOW = datetime.now(UTC)


async def set_counter(db: AsyncEngine, key_id: str, period: str, start: date, tokens: int) -> None:
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO usage_counters VALUES (:k, :p, :s, :t, 1) "
                "ON CONFLICT (key_id, period, period_start) DO UPDATE SET tokens = :t"
            ),
            {"k": key_id, "p": period, "s": start, "t": tokens},
        )


async def test_daily_quota_used_up_in_the_counters_is_refused(
    db: AsyncEngine, make_writer: WriterFactory
) -> None:
    checker = QuotaChecker(db, make_writer(db))
    key = KeyRecord(id="k1", name="k1", daily_tokens=1000)
    await checker.check(key)
    await set_counter(db, "k1", "day", NOW.date(), 1000)
    await checker.refresh()
    with pytest.raises(QuotaExceeded) as caught:
        await checker.check(key)
    err = caught.value
    assert (err.status, err.type, err.code) == (429, "insufficient_quota", "insufficient_quota")
    assert "daily token quota" in err.message and "1,000 of 1,000" in err.message
    reset = resets_at("day", NOW.date())
    assert f"{reset:%Y-%m-%dT%H:%M:%SZ}" in err.message and "UTC midnight" in err.message
    assert err.body()["error"]["type"] == "insufficient_quota"
    assert not err.retryable  # the SDKs are told not to retry until the reset


async def test_monthly_quota_is_read_on_first_sight_of_a_key(
    db: AsyncEngine, make_writer: WriterFactory
) -> None:
    await set_counter(db, "k2", "month", NOW.date().replace(day=1), 5000)
    checker = QuotaChecker(db, make_writer(db))
    with pytest.raises(QuotaExceeded, match=r"monthly token quota.*first of the month"):
        await checker.check(KeyRecord(id="k2", name="k2", daily_tokens=10**6, monthly_tokens=5000))


async def test_unflushed_local_usage_counts_before_and_after_its_flush(
    db: AsyncEngine, make_writer: WriterFactory
) -> None:
    writer = make_writer(db)
    checker = QuotaChecker(db, writer)
    key = KeyRecord(id="k3", name="k3", daily_tokens=100)
    await checker.check(key)
    writer.record(event("k3", prompt=60, completion=30))
    await checker.check(key)  # 90 < 100
    writer.record(event("k3", prompt=5, completion=5))
    with pytest.raises(QuotaExceeded, match="100 of 100"):
        await checker.check(key)  # nothing has reached Postgres yet
    await writer.flush()
    assert writer.unflushed == {}
    with pytest.raises(QuotaExceeded):
        await checker.check(key)  # flushed tokens stay counted until the next refresh reads them
    await checker.refresh()
    with pytest.raises(QuotaExceeded, match="100 of 100"):
        await checker.check(key)


async def test_another_replicas_usage_shows_up_on_refresh(
    db: AsyncEngine, database_url: str, make_writer: WriterFactory
) -> None:
    checker = QuotaChecker(db, make_writer(db), ttl_s=0.05)
    key = KeyRecord(id="k4", name="k4", monthly_tokens=50)
    await checker.check(key)
    other_engine = create_engine(database_url, pool_size=1)
    other = make_writer(other_engine)
    other.record(event("k4", prompt=40, completion=10))
    await other.stop()
    await other_engine.dispose()
    checker.start()
    try:
        for _ in range(100):
            try:
                await checker.check(key)
            except QuotaExceeded:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the background refresh never saw the other replica's usage")
    finally:
        await checker.stop()


async def test_a_new_day_starts_from_zero(db: AsyncEngine, make_writer: WriterFactory) -> None:
    await set_counter(db, "k5", "day", NOW.date(), 100)
    checker = QuotaChecker(db, make_writer(db))
    key = KeyRecord(id="k5", name="k5", daily_tokens=100)
    with pytest.raises(QuotaExceeded):
        await checker.check(key, now=NOW)
    await checker.check(key, now=NOW + timedelta(days=1))


async def test_keys_without_quotas_never_touch_the_database(
    pg_server: Any, make_writer: WriterFactory
) -> None:
    broken = create_engine(_with_db(pg_server.get_uri(), "gw_absent"), pool_size=1)
    checker = QuotaChecker(broken, make_writer(broken, stop_timeout_s=0.1))
    await checker.check(KeyRecord(id="free", name="free"))
    assert checker._cache == {}
    # With the database away, a quota key falls back on local counts instead of failing.
    await checker.check(KeyRecord(id="q", name="q", daily_tokens=10))
    await broken.dispose()
