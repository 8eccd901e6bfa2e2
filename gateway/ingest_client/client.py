"""A small HTTP client for a running gateway's Files and Vector Stores API (aiohttp, which
the gateway already depends on), used by `gateway ingest`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class GatewayClient:
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            headers={"authorization": f"Bearer {api_key}"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_s),
        )

    async def close(self) -> None:
        await self._session.close()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self._session.request(method, self.base_url + path, **kwargs) as response:
                raw = await response.read()
                status = response.status
        except aiohttp.ClientError as exc:
            raise ApiError(0, f"cannot reach {self.base_url} ({exc})") from exc
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if status >= 400:
            raise ApiError(status, _message(body))
        return body

    async def pages(self, path: str, **query: str) -> AsyncIterator[dict[str, Any]]:
        after: str | None = None
        while True:
            params = {"limit": "100", **query, **({"after": after} if after else {})}
            page = await self._call("GET", path, params=params)
            for item in page["data"]:
                yield item
            if not page.get("has_more") or not page["data"]:
                return
            after = page["data"][-1]["id"]

    async def store_named(self, name: str) -> dict[str, Any]:
        """The newest store called `name`, created if there is none."""
        async for store in self.pages("/vector_stores"):
            if store.get("name") == name:
                return store
        return await self._call("POST", "/vector_stores", json={"name": name})  # type: ignore[no-any-return]

    async def upload(self, path: Path, filename: str) -> str:
        with path.open("rb") as handle:
            form = aiohttp.FormData()
            form.add_field("purpose", "assistants")
            form.add_field(
                "file", handle, filename=filename, content_type="application/octet-stream"
            )
            created = await self._call("POST", "/files", data=form)
        return str(created["id"])

    async def attach(self, store_id: str, file_id: str, attributes: dict[str, Any]) -> None:
        await self._call(
            "POST",
            f"/vector_stores/{store_id}/files",
            json={"file_id": file_id, "attributes": attributes},
        )

    async def store_file(self, store_id: str, file_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/vector_stores/{store_id}/files/{file_id}")  # type: ignore[no-any-return]

    async def delete_file(self, file_id: str) -> None:
        await self._call("DELETE", f"/files/{file_id}")


def _message(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or body["error"])
    return str(body)[:300]
