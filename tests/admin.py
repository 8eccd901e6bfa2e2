"""The one admin secret every test gateway with keys runs with, and the one way tests make
API keys: `POST /admin/keys`, as an operator would, against any gateway a test has (an
in-process one, a `gateway serve` process, or an app behind an ASGI transport)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

ADMIN_KEY = "admin-secret-for-tests-0123456789"


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def admin_headers() -> dict[str, str]:
    return bearer(ADMIN_KEY)


class Reachable(Protocol):
    """A gateway a test started: anything with a base URL."""

    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class ApiKey:
    """A key as `POST /admin/keys` answered it: the secret is shown only there."""

    id: str
    secret: str
    record: dict[str, Any]  # the whole answer: name, limits, models, created_at

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.secret)


async def create_key(
    gateway: Reachable | httpx.AsyncClient, name: str = "test", **fields: Any
) -> ApiKey:
    """A new key named `name` with `fields` (limits, models) made with the admin secret;
    `gateway` is a started gateway or a client already pointed at one."""
    if isinstance(gateway, httpx.AsyncClient):
        response = await gateway.post(
            "/admin/keys", json={"name": name, **fields}, headers=admin_headers()
        )
    else:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            response = await client.post(
                "/admin/keys", json={"name": name, **fields}, headers=admin_headers()
            )
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return ApiKey(id=str(record["id"]), secret=str(record["key"]), record=record)
