"""One error boundary: whatever escapes a route, FastAPI's or a pure-ASGI one, is answered
in the OpenAI shape with the request id (500) or as a retryable 503 for a database outage;
the traceback goes to the log, never to the client."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa

from gateway.db.outage import is_outage
from gateway.http import exception_handlers
from gateway.http.asgi import Receive, Scope, Send, send_bytes
from gateway.http.context import RequestContextMiddleware
from gateway.logs import access_log, printable
from gateway.metrics import Metrics

SECRET_DETAIL = "password=hunter2 in an exception message"


def connection_refused() -> sa.OperationalError:
    return sa.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))


def fastapi_app(error: Callable[[], Exception]) -> FastAPI:
    api = FastAPI()
    exception_handlers.install(api)

    @api.get("/admin/boom")
    async def boom() -> None:
        raise error()

    return api


def client_for(app: object) -> httpx.AsyncClient:
    stack = RequestContextMiddleware(app, Metrics(), None)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=stack), base_url="http://gw")


async def test_a_fastapi_route_bug_is_an_openai_500_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "gateway.error")
    async with client_for(fastapi_app(lambda: RuntimeError(SECRET_DETAIL))) as client:
        response = await client.get("/admin/boom", headers={"x-request-id": "req-boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "req-boom-1"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "internal_error" and "req-boom-1" in error["message"]
    assert SECRET_DETAIL not in response.text and "Traceback" not in response.text
    # The log has it all, under the same id.
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == "req-boom-1"]
    assert logged and logged[0].exc_info is not None


@pytest.mark.parametrize(
    "error",
    [
        connection_refused,
        lambda: sa.InterfaceError("SELECT 1", {}, psycopg.InterfaceError("connection closed")),
        lambda: sa.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        lambda: psycopg.OperationalError("server closed the connection unexpectedly"),
    ],
)
async def test_a_database_outage_on_a_fastapi_route_is_a_retryable_503(
    error: Callable[[], Exception],
) -> None:
    async with client_for(fastapi_app(error)) as client:
        response = await client.get("/admin/boom")
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "1"
    assert "x-should-retry" not in response.headers  # retrying is the point


async def test_a_database_error_that_is_a_bug_stays_a_500() -> None:
    def duplicate() -> Exception:
        return sa.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key"))

    async with client_for(fastapi_app(duplicate)) as client:
        response = await client.get("/admin/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [(RuntimeError(SECRET_DETAIL), 500, "internal_error"), (connection_refused(), 503, None)],
)
async def test_the_pure_asgi_routes_share_the_boundary(
    error: Exception, status: int, code: str | None
) -> None:
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        raise error

    async with client_for(route) as client:
        response = await client.post("/v1/chat/completions", json={})
    assert response.status_code == status
    body = response.json()["error"]
    assert body["code"] == (code or "database_unavailable")
    assert response.headers["x-request-id"] in body["message"] or status == 503
    assert SECRET_DETAIL not in response.text


def test_outages_are_recognised_through_a_wrapping_exception() -> None:
    try:
        try:
            raise connection_refused()
        except sa.OperationalError as inner:
            raise RuntimeError("while listing keys") from inner
    except RuntimeError as outer:
        assert is_outage(outer)
    assert not is_outage(ValueError("no"))
    assert not is_outage(sa.ProgrammingError("SELECT nope", {}, Exception("undefined table")))


async def test_an_access_log_line_cannot_be_forged_through_the_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 404, b"{}")

    stack = RequestContextMiddleware(route, Metrics(), access_log("console"))
    transport = httpx.ASGITransport(app=stack)
    forged = "/v1/x%0Ainfo    gateway.access: GET /admin/keys 200%1B[2J"
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        await client.get(forged)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("info    gateway.access: GET /v1/x\\x0ainfo")
    assert "\\x1b[2J 404" in lines[0] and "\x1b" not in lines[0]


def test_printable_leaves_ordinary_paths_alone() -> None:
    path = "/v1/models/Qwen/Qwen2.5-32B-Instruct-AWQ é"
    assert printable(path) is path
    assert printable("a\u2028b\u202ec") == "a\\u2028b\\u202ec"


async def test_a_bug_on_the_anthropic_routes_is_an_anthropic_500() -> None:
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError(SECRET_DETAIL)

    async with client_for(route) as client:
        response = await client.post("/v1/messages", headers={"x-request-id": "req-boom-2"})
    assert response.status_code == 500
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert "req-boom-2" in body["error"]["message"]
    assert SECRET_DETAIL not in response.text
