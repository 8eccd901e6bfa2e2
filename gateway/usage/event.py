"""One usage event per request, and the pure arithmetic on batches of them: UTC periods and
the per-(key, period) token deltas that feed `usage_counters` and the quota checks."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Period = Literal["day", "month"]
# A `usage_counters` primary key: (key_id, period, period_start); for an end user's
# counters the first part is `end_user_subject(key_id, end_user)`.
CounterKey = tuple[str, str, date]


def end_user_subject(key_id: str, end_user: str) -> str:
    """The id an end user's limits and counters live under: one space per (key, person),
    so the same person behind two keys, or two people behind one, never share a bucket."""
    return f"{key_id}/{end_user}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class UsageEvent:
    request_id: str
    key_id: str | None
    model: str
    route: str
    status: int
    upstream: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_ms: float = 0.0
    ttft_ms: float | None = None
    streamed: bool = False
    cancelled: bool = False
    # The person a trusted front end named (gateway.keys.end_users); None otherwise.
    end_user: str | None = None
    # When the request ended: its tokens count towards that UTC day and month.
    created_at: datetime = field(default_factory=_utcnow)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def event_from_request(
    *,
    request_id: str,
    key_id: str | None,
    model: str,
    route: str,
    started: float,
    status: int,
    upstream: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    ttft_s: float | None = None,
    streamed: bool = False,
    cancelled: bool = False,
    ended: float | None = None,
    end_user: str | None = None,
) -> UsageEvent:
    """Build the event from what the request context and its cost say.

    `started`/`ended` are `time.perf_counter()` readings. The tokens are the request's
    cost (gateway.admission.cost): the engine's usage, or, when it sent none (a client that
    left mid-stream), the prompt's estimate and the answer tokens relayed.
    """
    elapsed = (ended if ended is not None else time.perf_counter()) - started
    return UsageEvent(
        request_id=request_id,
        key_id=key_id,
        model=model,
        route=route,
        status=status,
        upstream=upstream,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        duration_ms=round(elapsed * 1000, 3),
        ttft_ms=round(ttft_s * 1000, 3) if ttft_s is not None else None,
        streamed=streamed,
        cancelled=cancelled,
        end_user=end_user,
    )


def day_start(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def month_start(moment: datetime) -> date:
    return day_start(moment).replace(day=1)


def period_start(period: Period, moment: datetime) -> date:
    return day_start(moment) if period == "day" else month_start(moment)


def resets_at(period: Period, start: date) -> datetime:
    """When a period's counter starts again from zero: next UTC midnight or first of month."""
    if period == "day":
        nxt = start + timedelta(days=1)
    elif start.month == 12:
        nxt = date(start.year + 1, 1, 1)
    else:
        nxt = date(start.year, start.month + 1, 1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=UTC)


def counter_keys(key_id: str, moment: datetime) -> tuple[CounterKey, CounterKey]:
    day = day_start(moment)
    return (key_id, "day", day), (key_id, "month", day.replace(day=1))


@dataclass(slots=True)
class BatchTotals:
    """What a batch adds to `usage_counters` and `api_keys.last_used_at`."""

    # CounterKey -> [tokens, requests]
    counters: dict[CounterKey, list[int]] = field(default_factory=dict)
    last_used: dict[str, datetime] = field(default_factory=dict)

    def sorted_counters(self) -> list[tuple[str, str, date, int, int]]:
        # Rows in primary-key order: replicas upserting overlapping keys then take their row
        # locks in the same order and cannot deadlock on each other.
        return [(*k, v[0], v[1]) for k, v in sorted(self.counters.items())]

    def sorted_last_used(self) -> list[tuple[str, datetime]]:
        return sorted(self.last_used.items())

    def token_deltas(self) -> dict[CounterKey, int]:
        return {k: v[0] for k, v in self.counters.items()}


def aggregate(events: Iterable[UsageEvent]) -> BatchTotals:
    totals = BatchTotals()
    counters = totals.counters
    last_used = totals.last_used
    for event in events:
        if event.key_id is None:
            continue
        tokens = event.total_tokens
        keys: tuple[CounterKey, ...] = counter_keys(event.key_id, event.created_at)
        if event.end_user is not None:
            subject = end_user_subject(event.key_id, event.end_user)
            keys += counter_keys(subject, event.created_at)
        for ck in keys:
            slot = counters.get(ck)
            if slot is None:
                counters[ck] = [tokens, 1]
            else:
                slot[0] += tokens
                slot[1] += 1
        seen = last_used.get(event.key_id)
        if seen is None or event.created_at > seen:
            last_used[event.key_id] = event.created_at
    return totals
