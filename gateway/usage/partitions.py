"""`usage_events` is range-partitioned by UTC month; this module names, creates and drops
the partitions.

Retention drops whole months (`DROP TABLE` of a partition: instant, no bloat, no vacuum),
never `DELETE`s rows. A DEFAULT partition catches any event outside the months that exist
(a gateway running past the months created ahead, a clock far off), so no batch is ever
refused for lack of a partition; each maintenance run moves such rows into their month's
partition, which it creates first. Maintenance runs at start and every few hours in each
gateway (PartitionKeeper), and on demand as `gateway usage retention`; replicas serialize
on an advisory lock. The rollup (`usage_rollup`) is kept: it is small, and reports
over dropped months still get their whole hours from it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.background import BackgroundTask

log = logging.getLogger("gateway.usage")

PARENT = "usage_events"
DEFAULT_PARTITION = "usage_events_default"
# Months created beyond the current one, so a month boundary never lands in the default.
AHEAD = 2
MAINTAIN_EVERY = timedelta(hours=6)
_NAME = re.compile(r"^usage_events_p(\d{4})_(\d{2})$")
# Any constant works; it only has to be the same in every replica and the CLI.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('gateway usage_events partitions'))"


def month_floor(moment: datetime | date) -> date:
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC).date()
    return moment.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"usage_events_p{month.year:04d}_{month.month:02d}"


def month_of(name: str) -> date | None:
    """The month a partition of ours holds, None for any other table (the default)."""
    match = _NAME.match(name)
    return date(int(match.group(1)), int(match.group(2)), 1) if match else None


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


def create_sql(month: date) -> list[str]:
    """Statements that add `month`'s partition, moving its rows out of the default first
    (attaching would fail while the default still holds rows of that range)."""
    name, lo, hi = partition_name(month), _bound(month), _bound(add_months(month, 1))
    # Only names and dates made here go into the text.
    move = (
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608
        f"WHERE created_at >= '{lo}' AND created_at < '{hi}' RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved"
    )
    return [
        f"CREATE TABLE {name} (LIKE {PARENT})",
        move,
        f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ('{lo}') TO ('{hi}')",
    ]


@dataclass(frozen=True, slots=True)
class Plan:
    create: list[date] = field(default_factory=list)
    drop: list[date] = field(default_factory=list)


def plan(
    existing: Iterable[date],
    stray: Iterable[date],
    now: datetime,
    retention: timedelta | None,
    ahead: int = AHEAD,
) -> Plan:
    """Which months to create (this one, `ahead` more, and those with rows in the default)
    and which to drop (every month that ended before `now - retention`)."""
    have = set(existing)
    current = month_floor(now)
    cutoff = now - retention if retention is not None else None

    def expired(month: date) -> bool:
        end = add_months(month, 1)
        return cutoff is not None and datetime(end.year, end.month, 1, tzinfo=UTC) <= cutoff

    wanted = {add_months(current, n) for n in range(ahead + 1)} | set(stray)
    create = sorted(m for m in wanted - have)
    drop = sorted(m for m in have | set(create) if expired(m))
    return Plan(create=create, drop=drop)


_LIST = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'usage_events'::regclass
"""
_STRAY = f"SELECT DISTINCT date_trunc('month', created_at, 'UTC')::date FROM {DEFAULT_PARTITION}"  # noqa: S608


async def existing_months(conn: AsyncConnection) -> list[date]:
    names = (await conn.execute(text(_LIST))).scalars().all()
    return sorted(m for m in (month_of(n) for n in names) if m is not None)


async def maintain(
    engine: AsyncEngine,
    *,
    now: datetime | None = None,
    retention: timedelta | None = None,
    dry_run: bool = False,
) -> Plan:
    """Create the partitions due and drop the expired ones, in one transaction."""
    now = now or datetime.now(UTC)
    async with engine.connect() as conn, conn.begin() as tx:
        await conn.execute(text(_LOCK))
        stray: list[Any] = list((await conn.execute(text(_STRAY))).scalars().all())
        todo = plan(await existing_months(conn), stray, now, retention)
        if dry_run:
            await tx.rollback()
            return todo
        for month in todo.create:
            for sql in create_sql(month):
                await conn.execute(text(sql))
        for month in todo.drop:
            await conn.execute(text(f"DROP TABLE {partition_name(month)}"))
    if todo.create or todo.drop:
        log.info(
            "usage partitions maintained",
            extra={
                "created": [m.isoformat()[:7] for m in todo.create],
                "dropped": [m.isoformat()[:7] for m in todo.drop],
            },
        )
    return todo


class PartitionKeeper:
    """Runs `maintain` at start and every MAINTAIN_EVERY in the background; a failure is
    logged and retried at the next run (events keep landing in the default meanwhile)."""

    def __init__(self, engine: AsyncEngine, retention: timedelta | None) -> None:
        self.engine = engine
        self.retention = retention
        self._task = BackgroundTask("usage-partitions")

    def start(self) -> None:
        self._task.start(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            try:
                await maintain(self.engine, retention=self.retention)
            except Exception:  # the next run retries; the gateway must not stop for this
                log.exception("usage partition maintenance failed")
            await asyncio.sleep(MAINTAIN_EVERY.total_seconds())
