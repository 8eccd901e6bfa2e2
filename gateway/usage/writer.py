"""The usage batch writer: `record()` on the request path, Postgres writes off it.

`record()` only appends to a bounded deque. A background task flushes every
`usage_flush_interval_s`, or as soon as `usage_batch_size` events wait; each flush is one
transaction (`gateway.usage.store.write_batch`). Events leave the buffer only after their
transaction committed, so a failed or interrupted flush loses nothing: while Postgres is
down they wait and are retried with backoff, and only what does not fit the buffer is
dropped (and counted). `stop()` writes everything still buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from itertools import islice

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.usage.event import CounterKey, UsageEvent, aggregate, day_start, end_user_subject
from gateway.usage.store import write_batch

log = logging.getLogger("gateway.usage")

FlushListener = Callable[[dict[CounterKey, int]], None]


# Refusals caused by a batch's content (Postgres' own, or psycopg's while encoding a value):
# retrying that batch unchanged would fail forever, so it is split until the culprit stands
# alone. Anything else (connection lost, database down) is retried as it is.
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError, ValueError, TypeError, OverflowError)


def _is_data_error(exc: BaseException) -> bool:
    return isinstance(exc, _DATA_ERRORS) or isinstance(getattr(exc, "orig", None), _DATA_ERRORS)


class UsageWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        metrics: Metrics,
        *,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.interval_s = settings.usage_flush_interval_s
        self.batch_size = settings.usage_batch_size
        self.buffer_max = settings.usage_buffer_max
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stop_timeout_s = stop_timeout_s
        # Recorded but not yet committed, including the batch being written right now.
        self._buffer: deque[UsageEvent] = deque()
        # Tokens of those events per counter row, for quota checks between flushes.
        self.unflushed: dict[CounterKey, int] = {}
        self._listeners: list[FlushListener] = []
        # A batch Postgres rejects is halved until the offending event stands alone.
        self._limit = self.batch_size
        self._failures = 0
        self._dropped = 0
        self._drop_logged_at = -60.0
        self._day, self._month = date.min, date.min
        self.flushes = 0  # committed batches: lets readers notice a flush raced them
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # flush() from a caller and the loop must never write the same head of the buffer.
        self._lock = asyncio.Lock()

    # -- the request path ------------------------------------------------------------

    def record(self, event: UsageEvent) -> bool:
        """Accept one event; False if it was dropped because the buffer is full."""
        buffer = self._buffer
        if self._closed or len(buffer) >= self.buffer_max:
            self._drop(event)
            return False
        buffer.append(event)
        key_id = event.key_id
        tokens = event.prompt_tokens + event.completion_tokens
        if key_id is not None and tokens:
            day, month = self._periods(event.created_at)
            unflushed = self.unflushed
            ck = (key_id, "day", day)
            unflushed[ck] = unflushed.get(ck, 0) + tokens
            ck = (key_id, "month", month)
            unflushed[ck] = unflushed.get(ck, 0) + tokens
            if event.end_user is not None:  # the same under the end user's counters
                subject = end_user_subject(key_id, event.end_user)
                ck = (subject, "day", day)
                unflushed[ck] = unflushed.get(ck, 0) + tokens
                ck = (subject, "month", month)
                unflushed[ck] = unflushed.get(ck, 0) + tokens
        if len(buffer) >= self.batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    def _periods(self, moment: datetime) -> tuple[date, date]:
        # The same periods as gateway.usage.event.counter_keys, cheaper: events are stamped
        # in UTC already and nearly all of them fall on the day of the previous one.
        day = moment.date() if moment.tzinfo is UTC else day_start(moment)
        if day != self._day:
            self._day, self._month = day, day.replace(day=1)
        return day, self._month

    def _drop(self, event: UsageEvent) -> None:
        reason = "shutdown" if self._closed else "buffer_full"
        self.metrics.usage_events_dropped.labels(reason).inc()
        self._dropped += 1
        now = time.monotonic()
        if now - self._drop_logged_at >= 60.0:  # a full buffer must not flood the log too
            self._drop_logged_at = now
            log.error(
                "usage buffer full: dropping events until writes catch up",
                extra={"reason": reason, "buffered": len(self._buffer), "dropped": self._dropped},
            )

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def add_listener(self, listener: FlushListener) -> None:
        """Called after each commit with the tokens it added per counter row."""
        self._listeners.append(listener)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def stop(self) -> None:
        """Write everything buffered (retrying up to `stop_timeout_s` if Postgres is down)."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            # Not cancelled: a cancel landing during COMMIT could leave us unsure whether
            # the batch was written. The loop sees the stop flag and drains by itself.
            await self._task
        else:
            await self._drain(deadline=time.monotonic() + self.stop_timeout_s)
        if self._buffer:
            lost = len(self._buffer)
            self.metrics.usage_events_dropped.labels("shutdown").inc(lost)
            log.error("usage events not written at shutdown", extra={"lost": lost})
            self._buffer.clear()

    async def flush(self) -> None:
        """Write what is buffered now (tests, and callers that need read-your-writes)."""
        await self._drain(deadline=time.monotonic() + self.stop_timeout_s)

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain(deadline=None)
            except Exception:  # the loop must outlive any bug in one flush
                log.exception("usage flush loop error")
                await asyncio.sleep(self.interval_s)
        await self._drain(deadline=time.monotonic() + self.stop_timeout_s)

    async def _drain(self, deadline: float | None) -> None:
        # Everything present at the tick is due; later arrivals wait for the next tick
        # unless a full batch builds up, so a trickle does not become one-row transactions.
        due = len(self._buffer)
        while self._buffer and (due > 0 or len(self._buffer) >= self.batch_size):
            written = await self._flush_once()
            if written is not None:
                due -= written
                continue
            if self._stop.is_set() and deadline is None:
                return  # stop() asked: leave the final drain to the caller's deadline
            if deadline is not None and time.monotonic() >= deadline:
                return
            await self._backoff(deadline)

    async def _backoff(self, deadline: float | None) -> None:
        delay = min(self.max_backoff_s, self.min_backoff_s * 2 ** min(self._failures - 1, 16))
        delay *= random.uniform(0.8, 1.2)  # replicas that failed together should not retry together
        if deadline is not None:
            delay = max(0.0, min(delay, deadline - time.monotonic()))
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()

    async def _flush_once(self) -> int | None:
        """Write one batch from the head of the buffer: how many events left it, None if
        the write failed and should be retried after a backoff."""
        async with self._lock:
            try:
                return await self._flush_locked()
            finally:
                # Set per flush, not per record(): under several workers a gauge write is
                # a write to a shared file. (set_function would not survive multiprocess.)
                self.metrics.usage_events_buffered.set(len(self._buffer))

    async def _flush_locked(self) -> int | None:
        n = min(len(self._buffer), self._limit)
        if n == 0:
            return 0
        batch = list(islice(self._buffer, n))
        totals = aggregate(batch)
        started = time.perf_counter()
        try:
            await write_batch(self.engine, batch, totals)
        except Exception as exc:
            return self._failed(exc, batch)
        self.metrics.usage_flush_duration.observe(time.perf_counter() - started)
        # Nothing awaited since the commit: no record() can interleave with this bookkeeping.
        for _ in range(n):
            self._buffer.popleft()
        deltas = totals.token_deltas()
        self._settle(deltas)
        self.flushes += 1
        self.metrics.usage_events_written.inc(n)
        if self._failures:
            log.warning(
                "usage writes recovered",
                extra={"failures": self._failures, "buffered": len(self._buffer)},
            )
        self._failures = 0
        self._limit = self.batch_size
        for listener in self._listeners:
            listener(deltas)
        return n

    def _settle(self, deltas: dict[CounterKey, int]) -> None:
        unflushed = self.unflushed
        for ck, tokens in deltas.items():
            left = unflushed.get(ck, 0) - tokens
            if left > 0:
                unflushed[ck] = left
            else:
                unflushed.pop(ck, None)  # keeps the map as small as the live keys

    def _failed(self, exc: Exception, batch: list[UsageEvent]) -> int | None:
        self.metrics.usage_flush_failures.inc()
        if _is_data_error(exc):
            if len(batch) > 1:
                self._limit = max(1, len(batch) // 2)
                return 0  # retried at once, smaller
            # One event Postgres will never accept: dropping it unblocks everything behind.
            self._buffer.popleft()
            self._settle(aggregate(batch).token_deltas())
            self.metrics.usage_events_dropped.labels("rejected").inc()
            log.error(
                "usage event rejected by Postgres",
                extra={"request_id": batch[0].request_id, "error": str(exc)},
            )
            return 1
        self._failures += 1
        level = logging.WARNING if self._failures == 1 else logging.DEBUG
        log.log(
            level,
            "usage flush failed; events stay buffered and are retried",
            extra={"error": f"{type(exc).__name__}: {exc}", "buffered": len(self._buffer)},
        )
        return None
