"""Daily and monthly token quotas, checked from memory on the request path.

A key's counters for the current UTC day and month are read from `usage_counters` once
(the first request of a key in this process), then refreshed in the background every
`ttl_s` for all recently active keys in one query. This process's tokens that are not yet
flushed come from the writer; tokens it flushed since the last refresh are added as they
commit. Other replicas' usage shows up within one refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.background import BackgroundTask
from gateway.errors import QuotaExceeded
from gateway.keys.record import KeyRecord
from gateway.usage.event import CounterKey, Period, day_start, resets_at
from gateway.usage.writer import UsageWriter

log = logging.getLogger("gateway.usage")

_READ = text(
    """
    SELECT key_id, period, period_start, tokens FROM usage_counters
    WHERE key_id = ANY(:ids)
      AND ((period = 'day' AND period_start = :day)
           OR (period = 'month' AND period_start = :month))
    """
)


@dataclass(slots=True)
class _Counts:
    day: date
    day_tokens: int
    month: date
    month_tokens: int
    fetched_at: float
    used_at: float

    def add(self, ck: CounterKey, tokens: int) -> None:
        _, period, start = ck
        if period == "day" and start == self.day:
            self.day_tokens += tokens
        elif period == "month" and start == self.month:
            self.month_tokens += tokens


class QuotaChecker:
    def __init__(
        self,
        engine: AsyncEngine,
        writer: UsageWriter,
        *,
        ttl_s: float = 2.0,
        idle_evict_s: float = 600.0,
        load_timeout_s: float = 1.0,
        max_entries: int = 10_000,
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.ttl_s = ttl_s
        self.idle_evict_s = idle_evict_s
        self.load_timeout_s = load_timeout_s
        # End users under a trusted key each have counters here: bounded, and refreshed
        # in one query, so a flood of new names cannot grow it (an evicted one is re-read).
        self.max_entries = max_entries
        self._cache: dict[str, _Counts] = {}
        self._loading: dict[str, asyncio.Future[_Counts]] = {}
        self._task = BackgroundTask("quota-refresh")
        writer.add_listener(self._on_flushed)

    async def check(self, key: KeyRecord, now: datetime | None = None) -> None:
        """Raise QuotaExceeded if the key has used up its daily or monthly tokens."""
        if key.daily_tokens is None and key.monthly_tokens is None:
            return
        now = now or datetime.now(UTC)
        day = day_start(now)
        month = day.replace(day=1)
        counts = self._cache.get(key.id)
        if counts is None or counts.day != day:
            # First sight of this key here, or a new day began: the only awaited read.
            counts = await self._load(key.id, day, month)
        counts.used_at = time.monotonic()
        unflushed = self.writer.unflushed
        if key.daily_tokens is not None:
            used = counts.day_tokens + unflushed.get((key.id, "day", day), 0)
            if used >= key.daily_tokens:
                raise _exceeded("day", key.daily_tokens, used, day, now)
        if key.monthly_tokens is not None:
            used = counts.month_tokens + unflushed.get((key.id, "month", month), 0)
            if used >= key.monthly_tokens:
                raise _exceeded("month", key.monthly_tokens, used, month, now)

    # -- background refresh ----------------------------------------------------------

    def start(self) -> None:
        self._task.start(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.ttl_s)
            try:
                await self.refresh()
                failing = False
            except Exception as exc:  # stale counts beat no counts while Postgres is away
                if not failing:  # once per outage, not every ttl_s
                    log.warning("quota counters refresh failed", extra={"error": str(exc)})
                failing = True

    async def refresh(self, now: datetime | None = None) -> None:
        """Re-read the counters of every key used recently, in one query."""
        mono = time.monotonic()
        for key_id in [k for k, c in self._cache.items() if mono - c.used_at > self.idle_evict_s]:
            del self._cache[key_id]
        if self._cache:
            day = day_start(now or datetime.now(UTC))
            await self._fetch(list(self._cache), day, day.replace(day=1))

    async def _load(self, key_id: str, day: date, month: date) -> _Counts:
        # A burst of first requests for one key shares one read.
        pending = self._loading.get(key_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load_one(key_id, day, month))
            self._loading[key_id] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key_id, None))
        return await asyncio.shield(pending)

    async def _load_one(self, key_id: str, day: date, month: date) -> _Counts:
        try:
            async with asyncio.timeout(self.load_timeout_s):
                await self._fetch([key_id], day, month)
        except Exception as exc:
            # Fail open on this process's own counts: an unreachable database should not
            # turn every quota-holding key away; the next refresh catches up.
            log.warning("quota counters unavailable", extra={"key_id": key_id, "error": str(exc)})
        counts = self._cache.get(key_id)
        if counts is None or counts.day != day:
            counts = _Counts(day, 0, month, 0, 0.0, time.monotonic())
            self._cache[key_id] = counts
            while len(self._cache) > self.max_entries:
                del self._cache[next(iter(self._cache))]
        return counts

    async def _fetch(self, key_ids: list[str], day: date, month: date) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_READ, {"ids": key_ids, "day": day, "month": month})).all()
        fresh = {k: _Counts(day, 0, month, 0, time.monotonic(), 0.0) for k in key_ids}
        for key_id, period, start, tokens in rows:
            fresh[key_id].add((key_id, period, start), int(tokens))
        for key_id, counts in fresh.items():
            old = self._cache.get(key_id)
            if old is not None:
                counts.used_at = old.used_at
                # Counters only grow within a period. A batch of ours that committed while
                # this read ran is already in `old` but maybe not in the read: keep the max.
                if old.day == day:
                    counts.day_tokens = max(counts.day_tokens, old.day_tokens)
                if old.month == month:
                    counts.month_tokens = max(counts.month_tokens, old.month_tokens)
            else:
                counts.used_at = time.monotonic()
            self._cache[key_id] = counts
        while len(self._cache) > self.max_entries:
            del self._cache[next(iter(self._cache))]  # loaded longest ago

    def __len__(self) -> int:
        return len(self._cache)

    def _on_flushed(self, deltas: dict[CounterKey, int]) -> None:
        # Those tokens just left the writer's unflushed map; keep them counted here until
        # the next refresh reads them back from Postgres.
        for ck, tokens in deltas.items():
            counts = self._cache.get(ck[0])
            if counts is not None:
                counts.add(ck, tokens)


def _exceeded(period: Period, limit: int, used: int, start: date, now: datetime) -> QuotaExceeded:
    reset = resets_at(period, start)
    name, when = (
        ("daily", "UTC midnight") if period == "day" else ("monthly", "the first of the month, UTC")
    )
    seconds = max(1, int((reset - now).total_seconds()))
    return QuotaExceeded(
        f"You exceeded your {name} token quota: {used:,} of {limit:,} tokens used. "
        f"It resets at {reset:%Y-%m-%dT%H:%M:%SZ} ({when}).",
        headers={"retry-after": str(seconds)},
    )
