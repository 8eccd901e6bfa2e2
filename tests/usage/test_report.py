"""GET /admin/usage on a tiny app, and `gateway usage` through click's runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from click.testing import CliRunner
from fastapi import FastAPI

from gateway.config import Settings
from gateway.db.engine import create_engine
from gateway.http import exception_handlers
from gateway.metrics import Metrics
from gateway.usage.cli import usage
from gateway.usage.report import UsageQuery
from gateway.usage.routes import UsageReports, router
from gateway.usage.writer import UsageWriter
from tests.admin import ADMIN_KEY, admin_headers
from tests.usage.conftest import event

D1 = datetime(2026, 3, 1, 10, tzinfo=UTC)
D2 = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
D3 = datetime(2026, 3, 3, 0, 1, tzinfo=UTC)


async def seed(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    writer = UsageWriter(engine, Settings(), Metrics())
    for e in [
        event("k1", 10, 5, model="m1", at=D1),
        event("k1", 20, 10, model="m1", at=D2, streamed=True, cancelled=True),
        event("k1", 1, 0, model="m2", at=D2, status=429),
        event("k2", 100, 50, model="m1", at=D3, status=502),
        event(None, 7, 3, model="m2", at=D3),
    ]:
        writer.record(e)
    await writer.stop()
    await engine.dispose()


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(database_url)
    engine = create_engine(database_url, pool_size=1)
    app = FastAPI()
    exception_handlers.install(app)
    app.include_router(router)
    app.state.settings = Settings(admin_key=ADMIN_KEY)
    app.state.usage_reports = UsageReports(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        yield c
    await engine.dispose()


async def test_totals_and_breakdowns(client: httpx.AsyncClient) -> None:
    r = await client.get("/admin/usage?since=2026-03-01&until=2026-03-03", headers=admin_headers())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["requests"] == 5
    assert (body["prompt_tokens"], body["completion_tokens"]) == (138, 68)
    assert body["total_tokens"] == 206
    assert (body["errors"], body["rate_limited"], body["cancelled"]) == (2, 1, 1)
    by_model = {m["model"]: m for m in body["by_model"]}
    assert by_model["m1"]["requests"] == 3 and by_model["m1"]["total_tokens"] == 195
    assert by_model["m2"]["total_tokens"] == 11
    assert [(d["date"], d["requests"]) for d in body["by_day"]] == [
        ("2026-03-01", 1),
        ("2026-03-02", 2),
        ("2026-03-03", 2),
    ]


async def test_filters_by_key_model_and_window(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/admin/usage",
        params={"key_id": "k1", "model": "m1", "since": "2026-03-01", "until": "2026-03-02"},
        headers=admin_headers(),
    )
    body = r.json()
    assert (body["requests"], body["total_tokens"]) == (2, 45)
    # A datetime bound is exact; a naive one means UTC.
    r = await client.get(
        "/admin/usage",
        params={"since": "2026-03-02T23:00:00", "until": "2026-03-03T00:00:00Z"},
        headers=admin_headers(),
    )
    assert r.json()["requests"] == 2
    # Without `since`, the window is the 30 days before `until`.
    r = await client.get("/admin/usage", params={"until": "2026-03-02"}, headers=admin_headers())
    assert r.json()["requests"] == 3


async def test_bad_window_and_missing_admin_key_are_openai_errors(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/admin/usage?since=yesterday", headers=admin_headers())
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "since"
    r = await client.get("/admin/usage?since=2026-03-05&until=2026-03-01", headers=admin_headers())
    assert r.status_code == 400
    r = await client.get("/admin/usage")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = await client.get("/admin/usage", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 403


def test_window_parsing_defaults_and_inclusive_dates() -> None:
    now = datetime(2026, 3, 31, 12, tzinfo=UTC)
    q = UsageQuery.parse(now=now)
    assert q.until == now and (now - q.since).days == 30
    q = UsageQuery.parse(since="2026-03-01", until="2026-03-01")
    assert q.until == datetime(2026, 3, 2, tzinfo=UTC)


def test_cli_prints_a_table_and_json(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(seed(database_url))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    runner = CliRunner()
    window = ["--since", "2026-03-01", "--until", "2026-03-03"]
    result = runner.invoke(usage, window)
    assert result.exit_code == 0, result.output
    assert "MODEL" in result.output and "DAY (UTC)" in result.output
    assert "206" in result.output and "2026-03-02" in result.output

    result = runner.invoke(usage, [*window, "--key-id", "k2", "--json"])
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.output)
    assert (body["requests"], body["total_tokens"], body["errors"]) == (1, 150, 1)


def test_cli_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    result = CliRunner().invoke(usage, [])
    assert result.exit_code != 0 and "GATEWAY_DATABASE_URL is not set" in result.output
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://u:p@127.0.0.1:1/none")
    result = CliRunner().invoke(usage, ["--since", "nope"])
    assert result.exit_code == 2 and "--since" in result.output
