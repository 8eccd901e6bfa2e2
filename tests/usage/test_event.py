"""The pure parts: events from a request's outcome, UTC periods, batch totals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from gateway.usage.event import aggregate, event_from_request, period_start, resets_at
from tests.usage.conftest import event


def test_event_from_a_relay_outcome() -> None:
    e = event_from_request(
        request_id="r1", key_id="k1", model="m", route="/v1/chat/completions",
        started=10.0, ended=10.25, status=200, prompt_tokens=12, completion_tokens=7,
        ttft_s=0.05, streamed=True, cancelled=True,
    )  # fmt: skip
    assert (e.prompt_tokens, e.completion_tokens, e.total_tokens) == (12, 7, 19)
    assert (e.duration_ms, e.ttft_ms) == (250.0, 50.0)
    assert e.created_at.tzinfo is not None


def test_periods_are_utc_and_reset_on_time() -> None:
    late_evening_west = datetime(2026, 12, 31, 20, tzinfo=timezone(timedelta(hours=-5)))
    assert period_start("day", late_evening_west) == date(2027, 1, 1)
    assert period_start("month", late_evening_west) == date(2027, 1, 1)
    assert resets_at("day", date(2026, 2, 28)) == datetime(2026, 3, 1, tzinfo=UTC)
    assert resets_at("month", date(2026, 12, 1)) == datetime(2027, 1, 1, tzinfo=UTC)


def test_batch_totals_are_summed_and_sorted_by_primary_key() -> None:
    t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    batch = [
        event("kb", 1, 1, at=t0),
        event("ka", 2, 2, at=t0 + timedelta(days=1)),
        event("kb", 3, 3, at=t0 + timedelta(hours=1)),
        event(None, 100, 100, at=t0),
    ]
    totals = aggregate(batch)
    assert totals.sorted_counters() == [
        ("ka", "day", date(2026, 3, 2), 4, 1),
        ("ka", "month", date(2026, 3, 1), 4, 1),
        ("kb", "day", date(2026, 3, 1), 8, 2),
        ("kb", "month", date(2026, 3, 1), 8, 2),
    ]
    assert totals.sorted_last_used() == [
        ("ka", t0 + timedelta(days=1)),
        ("kb", t0 + timedelta(hours=1)),
    ]
