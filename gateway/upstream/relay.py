"""Forwarding one request to an engine and relaying its answer, bytes as they arrive.

Failover happens only before the client has received anything: a refused or reset
connection moves on to the next healthy engine; once bytes flowed, a failure is reported
in-band. When the client goes away, the upstream connection is closed at once so vLLM
aborts the request and frees its KV cache.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from gateway.http.asgi import RawHeaders, Receive, Send
from gateway.http.disconnect import until_disconnect
from gateway.upstream.dialect import OPENAI, Dialect
from gateway.upstream.engines import Engines, translate
from gateway.upstream.registry import Upstream
from gateway.upstream.sse import EventSplitter, StreamUsage

# FastAPI's answer for a path it has no route for.
_NO_SUCH_ROUTE = {"detail": "Not Found"}

_SSE_HEADERS: RawHeaders = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # proxies like nginx must not buffer the stream
]


class Rewriter(Protocol):
    """Changes a successful answer on its way to the client (file_search citations)."""

    def body(self, body: bytes) -> bytes: ...

    def events(self, events: list[bytes]) -> list[bytes]: ...


@dataclass(slots=True)
class RelayRequest:
    path: str
    body: bytes
    headers: dict[str, str]
    model: str
    stream: bool
    strip_usage: bool
    dialect: Dialect = OPENAI
    started: float = 0.0
    extra_headers: RawHeaders | None = None
    # None for plain requests: they pay one `is None` test per response or network chunk.
    rewrite: Rewriter | None = None


@dataclass(slots=True)
class RelayResult:
    upstream: str | None = None
    status: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    streamed: bool = False
    cancelled: bool = False
    # Content chunks relayed: an estimate of completion tokens when no usage arrived.
    chunks: int = 0
    # The request went out to an engine: from then on it may cost tokens.
    dispatched: bool = False
    # The client has the start of an event stream: a late failure goes in as an event.
    sse_open: bool = False
    # How long the request waited for its engine to wake (grouped engines only).
    switch_wait_s: float | None = None


class Relay:
    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self.metrics = engines.metrics

    async def forward(
        self,
        request: RelayRequest,
        candidates: Sequence[Upstream],
        receive: Receive,
        send: Send,
        result: RelayResult | None = None,
    ) -> RelayResult:
        """Relay the request; returns what metering needs. Raises GatewayError only while
        nothing has been sent to the client yet. `result` is filled in as the relay goes,
        so a caller that is cancelled meanwhile still knows what was relayed."""
        if result is None:
            result = RelayResult()
        result.streamed = request.stream
        result.cancelled = await until_disconnect(
            self._forward(request, candidates, send, result), receive
        )
        return result

    async def _forward(
        self,
        request: RelayRequest,
        candidates: Sequence[Upstream],
        send: Send,
        result: RelayResult,
    ) -> None:
        async with self.engines.post(
            request.path, request.body, request.headers, request.model, candidates, result
        ) as (response, upstream):
            result.upstream = upstream.url
            result.status = response.status
            if response.status != 200:
                await self._relay_error(response, upstream, send, request, result)
            elif response.content_type == "text/event-stream":
                await self._relay_stream(response, upstream, send, request, result)
            else:
                await self._relay_body(response, send, request, result)

    async def _relay_error(
        self,
        response: aiohttp.ClientResponse,
        upstream: Upstream,
        send: Send,
        request: RelayRequest,
        result: RelayResult,
    ) -> None:
        self.metrics.upstream_errors.labels(upstream.url, "status").inc()
        raw = await response.read()
        try:
            payload: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            payload = None
        fallback = raw[:500].decode("utf-8", "replace").strip()
        if response.status == 404 and payload == _NO_SUCH_ROUTE:
            # The engine has no such route (vLLM serves each only for some kinds of model).
            payload = {
                "error": {
                    "message": f"The engine serving `{request.model}` does not serve "
                    f"{request.path}: it is not a route for this kind of model.",
                    "type": "invalid_request_error",
                    "code": "route_not_served",
                }
            }
        body = request.dialect.upstream_error(payload, response.status, fallback)
        headers: RawHeaders = [(b"content-type", b"application/json")]
        if 400 <= response.status < 500 and response.status not in (408, 409, 429):
            headers.append((b"x-should-retry", b"false"))
        headers += request.extra_headers or ()
        if result.switch_wait_s is not None:
            headers.append(_switch_header(result.switch_wait_s))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _relay_body(
        self,
        response: aiohttp.ClientResponse,
        send: Send,
        request: RelayRequest,
        result: RelayResult,
    ) -> None:
        try:
            body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise translate(exc, "mid-response") from exc
        if request.rewrite is not None:
            body = request.rewrite.body(body)
        headers: RawHeaders = [
            (b"content-type", response.headers.get("content-type", "application/json").encode()),
            (b"content-length", str(len(body)).encode()),
            *(request.extra_headers or ()),
        ]
        if result.switch_wait_s is not None:
            headers.append(_switch_header(result.switch_wait_s))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            await send({"type": "http.response.body", "body": body})
        finally:
            # Read as the client got it, once it has it: parsing a large answer (a batch of
            # embeddings) is metering's business, not on the client's clock.
            _read_usage(body, result, request.dialect)

    async def _relay_stream(
        self,
        response: aiohttp.ClientResponse,
        upstream: Upstream,
        send: Send,
        request: RelayRequest,
        result: RelayResult,
    ) -> None:
        headers: RawHeaders = [
            (b"content-type", response.headers["content-type"].encode()),
            *_SSE_HEADERS,
            *(request.extra_headers or ()),
        ]
        if result.switch_wait_s is not None:
            headers.append(_switch_header(result.switch_wait_s))
        result.sse_open = True
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        splitter = EventSplitter()
        usage = StreamUsage()
        rewrite = request.rewrite
        try:
            async for chunk in response.content.iter_any():
                events = splitter.feed(chunk)
                if rewrite is not None:
                    events = rewrite.events(events)
                out = self._filter(events, usage, request)
                if out:
                    if result.ttft_s is None:
                        result.ttft_s = time.perf_counter() - request.started
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            tail = splitter.flush()
        except (aiohttp.SocketTimeoutError, TimeoutError):
            self.metrics.upstream_errors.labels(upstream.url, "timeout").inc()
            tail = request.dialect.stream_error(
                "The inference engine went silent mid-stream (GATEWAY_READ_TIMEOUT_S).",
                "upstream_timeout",
                504,
            )
        except aiohttp.ClientError:
            self.metrics.upstream_errors.labels(upstream.url, "stream").inc()
            tail = request.dialect.stream_error(
                "The inference engine closed the stream early.", "upstream_disconnected", 502
            )
        finally:
            # Also when the client left (cancellation): what was relayed is still metered.
            result.prompt_tokens = usage.prompt_tokens
            result.completion_tokens = usage.completion_tokens
            result.chunks = usage.chunks
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    @staticmethod
    def _filter(events: list[bytes], usage: StreamUsage, request: RelayRequest) -> bytes:
        if not events:
            return b""
        out: list[bytes] = []
        dialect = request.dialect
        for event in events:
            if dialect.read_event(event, usage) and request.strip_usage:
                continue
            out.append(dialect.normalise_event(event))
        return b"".join(out)


def _read_usage(body: bytes, result: RelayResult, dialect: Dialect) -> None:
    tokens = dialect.read_body(body)
    if tokens is not None:
        result.prompt_tokens, result.completion_tokens = tokens


def _switch_header(waited_s: float) -> tuple[bytes, bytes]:
    return (b"x-gateway-switch-wait-ms", str(round(waited_s * 1000)).encode())
