"""The hourly rollup the writer keeps equals the raw events, and reports read through it
(rollup for whole hours, raw events at the edges) equal a plain count of the events."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.usage import rollup
from gateway.usage.event import UsageEvent
from gateway.usage.facts import split
from gateway.usage.report import SeriesQuery, UsageQuery, usage_report, usage_series
from tests.usage.conftest import WriterFactory, event, scalar

START = datetime(2026, 3, 1, tzinfo=UTC)
SPAN = timedelta(days=4)
KEYS = ["k1", "k2", None]
MODELS = ["m1", "m2", "m3"]
PEOPLE = ["ann", "bob", "cy", None]


def random_events(rng: random.Random, n: int) -> list[UsageEvent]:
    events = []
    for _ in range(n):
        at = START + timedelta(seconds=rng.randrange(int(SPAN.total_seconds())))
        at += timedelta(microseconds=rng.randrange(1_000_000))
        key = rng.choice(KEYS)
        events.append(
            event(
                key,
                rng.randrange(0, 500),
                rng.randrange(0, 200),
                model=rng.choice(MODELS),
                status=rng.choice([200, 200, 200, 429, 500, 400]),
                at=at,
                cancelled=rng.random() < 0.1,
                end_user=rng.choice(PEOPLE) if key else None,
                ttft_ms=None if rng.random() < 0.2 else round(rng.uniform(1, 900), 3),
            )
        )
    return events


@pytest.fixture
async def written(db: AsyncEngine, make_writer: WriterFactory) -> list[UsageEvent]:
    events = random_events(random.Random(15), 1500)
    # Small batches: the same (hour, key, model, person) is added to across batches.
    writer = make_writer(db, usage_batch_size=97)
    for e in events:
        writer.record(e)
    await writer.flush()
    return events


def _counts(events: list[UsageEvent]) -> dict[str, int]:
    prompt = sum(e.prompt_tokens for e in events)
    completion = sum(e.completion_tokens for e in events)
    return {
        "requests": len(events),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "errors": sum(e.status >= 400 for e in events),
        "rate_limited": sum(e.status == 429 for e in events),
        "cancelled": sum(e.cancelled for e in events),
    }


def expected_report(
    events: list[UsageEvent], since: datetime, until: datetime, key: str | None, model: str | None
) -> dict[str, Any]:
    chosen = [
        e
        for e in events
        if since <= e.created_at < until
        and (key is None or e.key_id == key)
        and (model is None or e.model == model)
    ]
    by_model: dict[str, list[UsageEvent]] = defaultdict(list)
    by_day: dict[str, list[UsageEvent]] = defaultdict(list)
    by_person: dict[str | None, list[UsageEvent]] = defaultdict(list)
    for e in chosen:
        by_model[e.model].append(e)
        by_day[e.created_at.date().isoformat()].append(e)
        by_person[e.end_user].append(e)
    return {
        **_counts(chosen),
        "by_model": {m: _counts(es) for m, es in by_model.items()},
        "by_day": {d: _counts(es) for d, es in by_day.items()},
        "by_end_user": {
            p: {**_counts(es), "last_seen": max(e.created_at for e in es).isoformat()}
            for p, es in by_person.items()
        },
    }


async def test_the_rollup_equals_the_raw_events(db: AsyncEngine, written: list[UsageEvent]) -> None:
    columns = (
        "period, start, key_id, model, end_user, requests, prompt_tokens, completion_tokens, "
        "errors, rate_limited, cancelled, round(ttft_ms_sum::numeric, 3), ttft_count, last_at"
    )
    async with db.connect() as conn:
        kept = set((await conn.execute(text(f"SELECT {columns} FROM usage_rollup"))).all())  # noqa: S608
        raw = f"SELECT {columns} FROM ({rollup.FROM_EVENTS}) AS r"  # noqa: S608
        counted = set((await conn.execute(text(raw))).all())
        events = (await conn.execute(text("SELECT count(*) FROM usage_events"))).scalar()
    assert events == len(written)
    assert len(kept) > 100  # several batches added to the same rows
    assert {row[0] for row in kept} == {"hour", "day"}
    assert kept == counted


# Windows with edges inside hours, on hour boundaries, shorter than an hour, across days.
WINDOWS = [
    (START + timedelta(hours=3, minutes=17, seconds=5), START + timedelta(days=2, minutes=41)),
    (START, START + SPAN),
    (START + timedelta(hours=5), START + timedelta(hours=29, seconds=1)),
    (START + timedelta(hours=7, minutes=10), START + timedelta(hours=7, minutes=50)),
    (START + timedelta(hours=7, minutes=10), START + timedelta(hours=8, minutes=5)),
    (START - timedelta(days=3), START + timedelta(days=1, microseconds=123)),
    # whole days in the middle, whole hours around them, partial hours at the edges
    (START + timedelta(hours=20, minutes=59), START + timedelta(days=3, hours=2, seconds=9)),
]


@pytest.mark.parametrize(("since", "until"), WINDOWS)
@pytest.mark.parametrize(("key", "model"), [(None, None), ("k1", None), ("k2", "m2")])
async def test_reports_equal_a_count_of_the_events(
    db: AsyncEngine,
    written: list[UsageEvent],
    since: datetime,
    until: datetime,
    key: str | None,
    model: str | None,
) -> None:
    group_by = "end_user" if key else None
    query = UsageQuery(since, until, key_id=key, model=model, group_by=group_by)
    async with db.connect() as conn:
        got = await usage_report(conn, query)
    want = expected_report(written, since, until, key, model)
    assert {f: got[f] for f in _counts([])} == {f: want[f] for f in _counts([])}
    assert {r.pop("model"): r for r in got["by_model"]} == want["by_model"]
    assert {r.pop("date"): r for r in got["by_day"]} == want["by_day"]
    if key:
        assert {r.pop("end_user"): r for r in got["by_end_user"]} == want["by_end_user"]


@pytest.mark.parametrize("bucket", ["hour", "day"])
@pytest.mark.parametrize("group_by", ["model", "key"])
async def test_long_series_from_the_rollup_equal_the_events(
    db: AsyncEngine, written: list[UsageEvent], bucket: str, group_by: str
) -> None:
    since = START + timedelta(hours=3, minutes=17, seconds=5)
    until = START + timedelta(days=3, minutes=41)  # beyond RAW_SERIES_UP_TO: the rollup
    query = SeriesQuery(bucket, group_by, since, until)
    async with db.connect() as conn:
        got = (await usage_series(conn, query))["data"]
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    groups: dict[tuple[str, Any], list[UsageEvent]] = defaultdict(list)
    for e in written:
        if since <= e.created_at < until:
            start = START + (e.created_at - START) // step * step
            groups[(start.isoformat(), e.model if group_by == "model" else e.key_id)].append(e)
    assert len(got) == len(groups)
    for row in got:
        es = groups[(row["bucket"], row["group"])]
        assert row["requests"] == len(es)
        assert row["total_tokens"] == sum(e.total_tokens for e in es)
        assert (row["errors"], row["rate_limited"]) == (
            sum(e.status >= 400 for e in es),
            sum(e.status == 429 for e in es),
        )
        ttfts = [e.ttft_ms for e in es if e.ttft_ms is not None]
        mean = round(sum(ttfts) / len(ttfts), 3) if ttfts else None
        assert row["ttft_ms_avg"] == pytest.approx(mean, abs=0.002)
        assert row["ttft_ms_p50"] is None  # no median from a rollup: the chart shows the mean


async def test_a_one_day_series_stays_raw_with_its_exact_median(
    db: AsyncEngine, written: list[UsageEvent]
) -> None:
    since, until = START + timedelta(hours=2, minutes=30), START + timedelta(days=1, hours=2)
    async with db.connect() as conn:
        got = (await usage_series(conn, SeriesQuery("hour", "model", since, until)))["data"]
    ttfts: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in written:
        if since <= e.created_at < until and e.ttft_ms is not None:
            hour = e.created_at.replace(minute=0, second=0, microsecond=0)
            ttfts[(hour.isoformat(), e.model)].append(e.ttft_ms)
    medians = {(r["bucket"], r["group"]): r["ttft_ms_p50"] for r in got}
    assert medians == {
        k: pytest.approx(statistics.median(v), abs=0.002) for k, v in ttfts.items()
    } | {k: None for k in medians if k not in ttfts}
    assert sum(r["requests"] for r in got) == sum(since <= e.created_at < until for e in written)


def test_split_reads_days_then_hours_then_raw_events_at_the_edges() -> None:
    at = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    hour = at.replace(minute=0)
    assert split(at, at + timedelta(hours=3)).ranges() == [
        ("raw", "since", "h_from"),
        ("hour", "h_from", "d_from"),
        ("raw", "h_to", "until"),
    ]
    window = split(at, at + timedelta(days=3))
    assert (window.h_from, window.d_from) == (
        hour + timedelta(hours=1),
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert (window.d_to, window.h_to) == (
        datetime(2026, 3, 4, tzinfo=UTC),
        hour + timedelta(days=3),
    )
    assert [r[0] for r in window.ranges()] == ["raw", "hour", "day", "hour", "raw"]
    hourly = split(at, at + timedelta(days=3), days=False)
    assert [r[0] for r in hourly.ranges()] == ["raw", "hour", "raw"]
    aligned = split(hour, hour + timedelta(hours=2))
    assert [r[0] for r in aligned.ranges()] == ["hour"]
    assert split(at, at + timedelta(minutes=30)).ranges() == [("raw", "since", "h_from")]
    india = timezone(timedelta(hours=5, minutes=30))
    assert split(at.astimezone(india), at.astimezone(india) + timedelta(days=3)) == window


async def test_huge_names_fit_the_rollup_index(db: AsyncEngine, make_writer: WriterFactory) -> None:
    writer = make_writer(db)
    # 4-byte characters; the end user stays within what usage_counters' ids hold.
    writer.record(event("k1", model="\U0001f600" * 5000, end_user="\U0001f601" * 250))
    await writer.flush()
    rows = await scalar(db, "SELECT count(*) FROM usage_rollup WHERE length(model) = 256")
    assert rows == 2  # its hour and its day; the event was not refused
    assert await scalar(db, "SELECT count(*) FROM usage_events") == 1
