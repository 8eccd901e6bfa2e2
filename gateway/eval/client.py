"""The gateway's OpenAI API as `gateway eval` uses it, over aiohttp with the user's key,
so the eval's requests go through the same keys, limits and metering as any client's."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from gateway.eval.checks import Answer


class EvalApiError(Exception):
    """The gateway refused a request (status 0: it could not be reached)."""

    def __init__(self, status: int, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s  # from a 429's retry-after


@dataclass(frozen=True)
class Timing:
    """One streamed answer: seconds to the first token, and decoding after it."""

    ttft_s: float
    decode_s: float
    tokens: int


def api_root(base_url: str) -> str:
    """`http://host:8080/v1` → `http://host:8080` (the admin routes live at the root)."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class EvalClient:
    def __init__(self, base_url: str, api_key: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = aiohttp.ClientSession(headers={"authorization": f"Bearer {api_key}"})

    async def close(self) -> None:
        await self._session.close()

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=10)

    async def models(self) -> list[str]:
        body = await self._json("GET", "/models")
        return [str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict)]

    async def chat(self, body: dict[str, Any]) -> Answer:
        reply = await self._json("POST", "/chat/completions", json=body)
        try:
            message = reply["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise EvalApiError(200, f"no message in the answer: {str(reply)[:200]}") from None
        calls = [
            (str(c["function"].get("name")), str(c["function"].get("arguments") or ""))
            for c in message.get("tool_calls") or []
            if isinstance(c, dict) and isinstance(c.get("function"), dict)
        ]
        return Answer(message.get("content") or "", calls)

    async def stream(self, body: dict[str, Any]) -> Timing:
        """Stream one answer and time it; token count from the usage chunk."""
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        start = time.perf_counter()
        first = last = 0.0
        tokens = 0
        try:
            async with self._session.post(
                self.base_url + "/chat/completions", json=body, timeout=self._timeout()
            ) as response:
                if response.status >= 400:
                    raise EvalApiError(response.status, _message(await response.read()))
                async for raw in response.content:
                    line = raw.strip()
                    if not line.startswith(b"data:") or line == b"data: [DONE]":
                        continue
                    chunk = orjson.loads(line[5:])
                    if isinstance(chunk.get("error"), dict):
                        raise EvalApiError(500, str(chunk["error"].get("message")))
                    if chunk.get("usage"):
                        tokens = int(chunk["usage"].get("completion_tokens") or 0)
                    for choice in chunk.get("choices") or []:
                        if (choice.get("delta") or {}).get("content"):
                            last = time.perf_counter()
                            first = first or last
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EvalApiError(0, f"stream failed: {exc or type(exc).__name__}") from exc
        if not first:
            raise EvalApiError(200, "the stream carried no text")
        return Timing(first - start, last - first, tokens)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self._session.request(
                method, self.base_url + path, timeout=self._timeout(), **kwargs
            ) as response:
                raw = await response.read()
                status = response.status
                retry_after = _seconds(response.headers.get("retry-after"))
        except TimeoutError:
            raise EvalApiError(0, f"no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise EvalApiError(0, f"cannot reach {self.base_url} ({exc})") from exc
        if status >= 400:
            raise EvalApiError(status, _message(raw), retry_after)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise EvalApiError(status, f"not JSON: {raw[:200]!r}") from None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _message(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:300].decode("utf-8", "replace")
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or body["error"])
    return str(body)[:300]


async def post_json(url: str, admin_key: str, payload: dict[str, Any]) -> Any:
    """POST with the admin key (storing a result at /admin/evals)."""
    headers = {"authorization": f"Bearer {admin_key}", "content-type": "application/json"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.post(url, data=orjson.dumps(payload), headers=headers) as response,
        ):
            raw = await response.read()
            if response.status >= 400:
                raise EvalApiError(response.status, _message(raw))
            return orjson.loads(raw)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise EvalApiError(0, f"cannot reach {url} ({exc or type(exc).__name__})") from exc
