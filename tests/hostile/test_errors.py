"""Failures inside the gateway, seen from outside: a bug is an OpenAI-shaped 500 that quotes
the request id (the traceback stays in the log), and a database outage is a retryable 503
on every route that needs the database, while keys already known keep being served.

The gateway here has a Postgres of its own, which the cases break and stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis

from gateway.db.migrate import upgrade
from tests.admin import admin_headers
from tests.hostile.conftest import (
    REDIS_URL,
    HostileGateway,
    ThreadedEngine,
    start_hostile_gateway,
    under_attack,
)
from tests.postgres import new_server, stop_server

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    server = new_server()
    upgrade(server.get_uri())
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def own_gateway(
    hostile_engine: ThreadedEngine,
    own_postgres: PostgresServer,
    hostile_redis: redis.Redis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostileGateway]:
    log_dir = tmp_path_factory.mktemp("hostile-errors")
    gateway = asyncio.run(
        start_hostile_gateway(
            hostile_engine.url, own_postgres.get_uri(), log_dir, GATEWAY_REDIS_URL=REDIS_URL
        )
    )
    yield gateway
    asyncio.run(gateway.process.stop())


async def test_a_bug_on_a_fastapi_route_is_an_openai_500_with_the_request_id(
    own_gateway: HostileGateway, own_postgres: PostgresServer
) -> None:
    gw = own_gateway
    # A schema the code does not expect: the usage report's query fails (not an outage).
    own_postgres.psql("ALTER TABLE usage_events RENAME TO usage_events_elsewhere;")

    async def probe() -> httpx.Response:
        async with httpx.AsyncClient(base_url=gw.url) as client:
            headers = {**admin_headers(), "x-request-id": "hostile-500-case"}
            return await client.get("/admin/usage", headers=headers)

    try:
        response = await under_attack(gw, probe())
    finally:
        own_postgres.psql("ALTER TABLE usage_events_elsewhere RENAME TO usage_events;")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "hostile-500-case"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "internal_error" and "hostile-500-case" in error["message"]
    for leak in ("Traceback", "usage_events", "UndefinedTable", "SELECT"):
        assert leak not in response.text
    log = gw.log()
    assert "request_id=hostile-500-case" in log and "Traceback" in log and "UndefinedTable" in log


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/admin/keys", {}),
    ("POST", "/admin/keys", {"json": {"name": "during-the-outage"}}),
    ("GET", "/admin/keys/key_0123456789abcdef", {}),
    ("GET", "/admin/usage", {}),
    ("GET", "/admin/usage/series", {}),
    ("GET", "/v1/files", {}),
    ("GET", "/v1/files/file-0123", {}),
    ("POST", "/v1/files", {"files": {"file": ("a.txt", b"hi")}, "data": {"purpose": "assistants"}}),
    ("GET", "/v1/vector_stores", {}),
    ("POST", "/v1/vector_stores", {"json": {"name": "during-the-outage"}}),
]


async def test_a_database_outage_is_a_retryable_503_while_known_keys_are_served(
    own_gateway: HostileGateway, own_postgres: PostgresServer
) -> None:
    gw = own_gateway
    await asyncio.to_thread(stop_server, own_postgres)

    async def probe() -> tuple[list[httpx.Response], httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.url, headers=admin_headers()) as client:
            answers = [
                await client.request(method, path, **options) for method, path, options in ROUTES
            ]
            return answers, await client.get("/readyz")

    try:
        # The bystander's key was cached before the outage: it keeps working (readyz is
        # 503 meanwhile, by design: the database is a part it reports).
        answers, readiness = await under_attack(gw, probe(), ready=False)
    finally:
        await asyncio.to_thread(own_postgres.ensure_postgres_running)
    for (method, path, _), response in zip(ROUTES, answers, strict=True):
        assert response.status_code == 503, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == "database_unavailable" and error["type"] == "server_error"
        assert response.headers["retry-after"] == "1", (method, path)
        assert "Traceback" not in response.text
    # The admin's /readyz says why.
    assert readiness.status_code == 503 and readiness.json()["database"]["reachable"] is False
