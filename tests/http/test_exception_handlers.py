"""FastAPI's own errors in the OpenAI shape: an unknown URL, a wrong method, a body that
fails validation, an `HTTPException`, and the gateway's errors raised from a route. (The
500 and the database's 503: `test_error_boundary.py`.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from gateway.errors import PermissionDenied, RateLimited
from gateway.http import exception_handlers


class Limits(BaseModel):
    rpm: int = Field(ge=1)


class NewKey(BaseModel):
    name: str
    limits: Limits


def make_app() -> FastAPI:
    app = FastAPI()
    exception_handlers.install(app)

    @app.post("/admin/keys")
    async def create(body: NewKey) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/admin/conflict")
    async def conflict() -> None:
        raise HTTPException(409, "Already there.", headers={"x-hint": "rename"})

    @app.get("/admin/limited")
    async def limited() -> None:
        raise RateLimited("Slow down.", headers={"retry-after": "7"})

    @app.get("/admin/forbidden")
    async def forbidden() -> None:
        raise PermissionDenied("Not yours.", code="forbidden")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        yield c


def openai_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


async def test_an_unknown_url_is_a_404_naming_it(client: httpx.AsyncClient) -> None:
    error = openai_error(await client.get("/v1/nothing-here"), 404)
    assert error["code"] == "unknown_url" and error["type"] == "invalid_request_error"
    assert error["message"] == "Unknown request URL: GET /v1/nothing-here."


async def test_a_wrong_method_is_a_405(client: httpx.AsyncClient) -> None:
    error = openai_error(await client.delete("/admin/keys"), 405)
    assert error["code"] == "method_not_allowed"
    assert error["message"] == "Method DELETE is not allowed on /admin/keys."


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"limits": {"rpm": 5}}, "name"),
        ({"name": "k", "limits": {"rpm": 0}}, "limits.rpm"),
        ({"name": "k", "limits": {"rpm": "many"}}, "limits.rpm"),
    ],
)
async def test_a_body_that_fails_validation_is_a_400_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], param: str
) -> None:
    response = await client.post("/admin/keys", json=body)
    error = openai_error(response, 400)
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert str(error["message"]).startswith(f"Invalid value for `{param}`: ")
    assert response.headers["x-should-retry"] == "false"  # the same body fails again


async def test_a_body_that_is_not_json_is_a_400_too(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/admin/keys", content=b"{not json", headers={"content-type": "application/json"}
    )
    openai_error(response, 400)


async def test_an_http_exception_keeps_its_status_detail_and_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/admin/conflict")
    error = openai_error(response, 409)
    assert error["message"] == "Already there." and response.headers["x-hint"] == "rename"


async def test_the_gateways_errors_keep_their_status_code_and_retry_hints(
    client: httpx.AsyncClient,
) -> None:
    limited = await client.get("/admin/limited")
    error = openai_error(limited, 429)
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert limited.headers["retry-after"] == "7" and "x-should-retry" not in limited.headers
    forbidden = await client.get("/admin/forbidden")
    assert openai_error(forbidden, 403)["code"] == "forbidden"
    assert forbidden.headers["x-should-retry"] == "false"
