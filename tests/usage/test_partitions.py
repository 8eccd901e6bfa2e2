"""Monthly partitions of usage_events: planned (pure), created ahead, stray rows moved out
of the default partition, expired months dropped whole; `gateway usage retention`."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import Settings
from gateway.db.engine import create_engine
from gateway.metrics import Metrics
from gateway.usage.cli import usage
from gateway.usage.partitions import (
    PartitionKeeper,
    add_months,
    existing_months,
    maintain,
    month_of,
    partition_name,
    plan,
)
from gateway.usage.writer import UsageWriter
from tests.usage.conftest import WriterFactory, event, scalar, wait_for

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_plan_creates_ahead_and_drops_only_whole_expired_months() -> None:
    have = [date(2026, m, 1) for m in (8, 9, 10, 11)]
    todo = plan(have, [date(2026, 3, 1)], NOW, timedelta(days=60))
    assert todo.create == [date(2026, 3, 1), date(2026, 12, 1), date(2027, 1, 1)]
    # 60 days before NOW is Sept 28: August ended before it, September did not.
    assert todo.drop == [date(2026, 3, 1), date(2026, 8, 1)]
    assert plan(have, [], NOW, None).drop == []
    assert add_months(date(2026, 11, 1), 14) == date(2028, 1, 1)
    assert month_of("usage_events_p2026_02") == date(2026, 2, 1)
    assert month_of("usage_events_default") is None


async def _count(db: AsyncEngine, table: str) -> int:
    return int(await scalar(db, f"SELECT count(*) FROM {table}"))  # noqa: S608


async def test_maintain_moves_stray_rows_and_drops_expired_months(
    db: AsyncEngine, make_writer: WriterFactory
) -> None:
    writer = make_writer(db)
    old, recent = datetime(2026, 3, 9, 8, tzinfo=UTC), datetime(2026, 10, 2, 8, tzinfo=UTC)
    for at in (old, old, recent):
        writer.record(event("k1", at=at))
    await writer.flush()
    # Months no partition was made for land in the default partition, never refused.
    assert await _count(db, "usage_events_default") == 3

    done = await maintain(db, now=NOW)
    assert date(2026, 3, 1) in done.create and done.drop == []
    assert await _count(db, "usage_events_default") == 0
    assert await _count(db, "usage_events_p2026_03") == 2
    async with db.connect() as conn:
        months = await existing_months(conn)
    assert {date(2026, 3, 1), date(2026, 10, 1), date(2027, 1, 1)} <= set(months)

    rolled = await _count(db, "usage_rollup")
    done = await maintain(db, now=NOW, retention=timedelta(days=90))
    assert done.drop == [date(2026, 3, 1)] and done.create == []
    assert await _count(db, "usage_events") == 1  # October's event stays
    assert await scalar(db, "SELECT to_regclass('usage_events_p2026_03')") is None
    assert await _count(db, "usage_rollup") == rolled  # the rollup keeps the history
    # New events still land after the drop.
    writer.record(event("k1", at=NOW))
    await writer.flush()
    assert await _count(db, "usage_events_p2026_11") == 1


async def _seed_march_and_count(database_url: str, table: str, seed: bool = False) -> int:
    engine = create_engine(database_url, pool_size=1)
    try:
        if seed:
            writer = UsageWriter(engine, Settings(), Metrics())
            writer.record(event("k1", at=datetime(2026, 3, 9, 8, tzinfo=UTC)))
            await writer.stop()
        return await _count(engine, table)
    finally:
        await engine.dispose()


def test_retention_command_dry_run_changes_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Synchronous: the command runs its own event loop, as from a shell.
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    assert asyncio.run(_seed_march_and_count(database_url, "usage_events_default", True)) == 1
    runner = CliRunner()
    result = runner.invoke(usage, ["retention", "--keep-days", "30", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would create: 2026-03" in result.output
    assert "would drop: 2026-03" in result.output
    assert asyncio.run(_seed_march_and_count(database_url, "usage_events_default")) == 1
    result = runner.invoke(usage, ["retention", "--keep-days", "30"])
    assert result.exit_code == 0, result.output
    assert "dropped: 2026-03" in result.output
    assert asyncio.run(_seed_march_and_count(database_url, "usage_events")) == 0
    result = runner.invoke(usage, ["retention", "--keep-days", "0"])
    assert result.exit_code == 2 and "--keep-days" in result.output


async def test_the_gateway_keeps_partitions_ahead_by_itself(db: AsyncEngine) -> None:
    async with db.connect() as conn:
        ahead = (await existing_months(conn))[-1]
    async with db.begin() as conn:
        await conn.execute(text(f"DROP TABLE {partition_name(ahead)}"))
    keeper = PartitionKeeper(db, retention=None)
    keeper.start()
    try:

        async def made() -> bool:
            async with db.connect() as conn:
                return ahead in await existing_months(conn)

        await wait_for(made)
    finally:
        await keeper.stop()
