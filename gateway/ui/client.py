"""The console's only way to data: the gateway's own public HTTP API, called in-process.

Requests go through the full ASGI stack (request ids, access log, metrics, the same auth
and routes a script would meet) with the admin key, so everything the console shows or
changes is also available to `curl`. Nothing here reads the database or the registry.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx


class ApiError(Exception):
    """A non-2xx answer, carrying the OpenAI-shaped error's message for the page."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _error(response: httpx.Response) -> ApiError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = error.get("message") if isinstance(error, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return ApiError(
        response.status_code,
        str(message or f"The gateway answered {response.status_code}."),
        str(code) if code is not None else None,
    )


class GatewayAPI:
    def __init__(self, app: Any, admin_key: str, read_timeout_s: float) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway.console",
            headers={"authorization": f"Bearer {admin_key}", "user-agent": "gateway-console"},
            # Chat on a large model may think for minutes; admin reads are quick anyway.
            timeout=httpx.Timeout(read_timeout_s, connect=5.0),
        )

    async def __aenter__(self) -> GatewayAPI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """(parsed JSON body, response headers); raises ApiError on a non-2xx answer."""
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        response = await self._client.request(
            method, path, json=json, params=query, content=content, headers=headers
        )
        if response.status_code >= 400:
            raise _error(response)
        return response.json(), response.headers

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.call("GET", path, params=params))[0]

    async def post(self, path: str, body: Any) -> Any:
        return (await self.call("POST", path, json=body))[0]

    async def delete(self, path: str) -> Any:
        return (await self.call("DELETE", path))[0]
