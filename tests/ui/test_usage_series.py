"""`GET /admin/usage/series`: buckets, groups, filters and bounds, on real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from gateway.usage import rollup
from gateway.usage.report import BadBound, SeriesQuery
from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
# (minutes after T0, key, model, status, prompt, completion, ttft_ms)
EVENTS = [
    (5, "key_a", "llama", 200, 10, 5, 100.0),
    (20, "key_a", "llama", 200, 10, 5, 300.0),
    (50, "key_b", "llama", 429, 0, 0, None),
    (55, "key_b", "qwen", 200, 20, 10, 200.0),
    (65, "key_a", "qwen", 503, 0, 0, None),
    (60 * 25, "key_a", "llama", 200, 1, 1, 50.0),
    (-30, "key_a", "llama", 200, 99, 99, 1.0),  # before the hourly windows
    (70, None, "llama", 200, 3, 3, None),  # the admin key's events have no key id
]


def _insert(database_url: str, events: list[tuple[Any, ...]]) -> None:
    url = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        for minutes, key, model, status, prompt, completion, ttft in events:
            conn.execute(
                "INSERT INTO usage_events (request_id, key_id, model, route, status,"
                " prompt_tokens, completion_tokens, duration_ms, ttft_ms, streamed, cancelled,"
                " created_at) VALUES (%s, %s, %s, '/v1/chat/completions', %s, %s, %s, 1, %s,"
                " false, false, %s)",
                (
                    f"r{minutes}",
                    key,
                    model,
                    status,
                    prompt,
                    completion,
                    ttft,
                    T0 + timedelta(minutes=minutes),
                ),
            )
        for sql in rollup.REBUILD:  # the writer would have kept it; this bypasses the writer
            conn.execute(sql)


@pytest.fixture
async def gw(
    engine: FakeEngine, gateway_factory: GatewayFactory, database_url: str
) -> RunningGateway:
    _insert(database_url, EVENTS)
    return await gateway_factory(
        upstreams=[engine.url], database_url=database_url, admin_key=ADMIN_KEY
    )


async def _series(gw: RunningGateway, **params: str) -> Any:
    async with gw.client(headers=admin_headers()) as client:
        response = await client.get("/admin/usage/series", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _rows(body: dict[str, Any]) -> dict[tuple[str, Any], dict[str, Any]]:
    return {(row["bucket"], row["group"]): row for row in body["data"]}


async def test_hourly_per_model(gw: RunningGateway) -> None:
    body = await _series(gw, since="2026-11-02T10:00:00Z", until="2026-11-02T12:00:00Z")
    assert body["object"] == "usage.series" and body["bucket"] == "hour"
    rows = _rows(body)
    assert set(rows) == {
        ("2026-11-02T10:00:00+00:00", "llama"),
        ("2026-11-02T10:00:00+00:00", "qwen"),
        ("2026-11-02T11:00:00+00:00", "llama"),
        ("2026-11-02T11:00:00+00:00", "qwen"),
    }
    llama = rows[("2026-11-02T10:00:00+00:00", "llama")]
    assert llama["requests"] == 3 and llama["rate_limited"] == 1 and llama["errors"] == 1
    assert llama["prompt_tokens"] == 20 and llama["completion_tokens"] == 10
    assert llama["total_tokens"] == 30
    assert llama["ttft_ms_avg"] == 200.0 and llama["ttft_ms_p50"] == 200.0
    assert rows[("2026-11-02T11:00:00+00:00", "qwen")]["errors"] == 1
    assert rows[("2026-11-02T11:00:00+00:00", "llama")]["ttft_ms_p50"] is None


async def test_daily_per_key_and_filters(gw: RunningGateway) -> None:
    body = await _series(gw, bucket="day", group_by="key", since="2026-11-02", until="2026-11-03")
    rows = _rows(body)
    day1, day2 = "2026-11-02T00:00:00+00:00", "2026-11-03T00:00:00+00:00"
    assert rows[(day1, "key_a")]["requests"] == 4  # 09:30 is before T0 but on the same day
    assert rows[(day1, "key_b")]["requests"] == 2
    assert rows[(day1, None)]["requests"] == 1
    assert rows[(day2, "key_a")]["requests"] == 1
    only = await _series(gw, bucket="day", since="2026-11-02", until="2026-11-03", key_id="key_b")
    assert [(r["group"], r["requests"]) for r in only["data"]] == [("llama", 1), ("qwen", 1)]
    model = await _series(gw, group_by="key", since="2026-11-02", until="2026-11-02", model="qwen")
    assert sorted((r["group"], r["requests"]) for r in model["data"]) == [
        ("key_a", 1),
        ("key_b", 1),
    ]


async def test_default_windows_end_now(gw: RunningGateway) -> None:
    body = await _series(gw)
    since = datetime.fromisoformat(body["since"])
    until = datetime.fromisoformat(body["until"])
    assert until - since == timedelta(hours=24)
    assert body["data"] == []  # the events are years away from now
    daily = await _series(gw, bucket="day")
    span = datetime.fromisoformat(daily["until"]) - datetime.fromisoformat(daily["since"])
    assert span == timedelta(days=30)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"bucket": "minute"}, "bucket"),
        ({"group_by": "route"}, "group_by"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-03", "until": "2026-11-01"}, "since"),
        ({"since": "2020-01-01", "until": "2026-01-01"}, "since"),  # 52k hours
    ],
)
async def test_bad_queries_are_400s(gw: RunningGateway, params: dict[str, str], param: str) -> None:
    async with gw.client(headers=admin_headers()) as client:
        response = await client.get("/admin/usage/series", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_admin_only(gw: RunningGateway) -> None:
    async with gw.client(headers=admin_headers()) as client:
        user = (await create_key(client, "u")).secret
    async with gw.client(headers={"authorization": f"Bearer {user}"}) as client:
        assert (await client.get("/admin/usage/series")).status_code == 403
    async with gw.client() as client:
        assert (await client.get("/admin/usage/series")).status_code == 401


def test_parse_is_pure_and_bounded() -> None:
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    query = SeriesQuery.parse(bucket="day", group_by="key", now=now)
    assert query.until == now and query.since == now - timedelta(days=30)
    assert SeriesQuery.parse(since="2026-01-01", until="2026-12-31", bucket="day").bucket == "day"
    with pytest.raises(BadBound):
        SeriesQuery.parse(since="2026-01-01", until="2026-12-31", bucket="hour")
