"""The one client to the engines: who serves a model, an in-flight lease while an engine
works on a request, one mapping of transport errors to the gateway's, and JSON calls.

Every caller (the proxy's relay, retrieval's embeddings, context fitting's tokenize)
goes through here, so they all pick engines the same way (the healthy one with the
fewest requests in flight), count the same in-flight requests, and fail the same way:
a refused or reset connection tries the next engine; a silent one is a 504.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from gateway.config import Settings
from gateway.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable
from gateway.metrics import Metrics
from gateway.upstream.balancer import choose
from gateway.upstream.client import upstream_headers
from gateway.upstream.registry import Registry, Upstream
from gateway.upstream.switching.controller import Switcher

log = logging.getLogger("gateway.upstream")

# Failures that mean the request never reached a working engine: safe to try the next one.
CONNECT_ERRORS = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.ServerDisconnectedError,  # also a stale keep-alive connection
    aiohttp.ClientOSError,
)
_TIMEOUTS = (aiohttp.SocketTimeoutError, TimeoutError)


class Dispatch(Protocol):
    """Told whether the request is on its way to an engine (from then on it may cost)."""

    dispatched: bool
    # Set when the engine had to wake first: how long the request waited for it.
    switch_wait_s: float | None


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    payload: Any  # the parsed JSON body, None if it was not JSON
    upstream: str


def engine_message(payload: Any) -> str | None:
    """vLLM's error message, from its OpenAI-shaped body or the older flat one."""
    if isinstance(payload, dict):
        inner = payload.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(payload.get("message"), str):
            return str(payload["message"])
    return None


def translate(exc: BaseException, what: str) -> GatewayError:
    """A transport failure after the request reached an engine, as the gateway's error."""
    if isinstance(exc, _TIMEOUTS):
        return UpstreamTimeout(
            f"The inference engine went silent for longer than the read timeout "
            f"(GATEWAY_READ_TIMEOUT_S) {what}."
        )
    return UpstreamUnavailable(f"The inference engine closed the connection {what}.")


@dataclass(slots=True)  # not frozen: built once per proxied request, and frozen costs
class _Request:
    path: str
    body: bytes
    headers: dict[str, str]
    model: str
    candidates: Sequence[Upstream]
    dispatch: Dispatch | None
    client_timeout: aiohttp.ClientTimeout | None


class Lease:
    """An engine's answer and the in-flight count it holds on that engine (balancing reads
    it), for the length of an `async with` block. Leaving the block closes the response:
    a no-op after a complete read, and otherwise the end of the request for vLLM, which
    then aborts it and frees its KV cache. A class rather than a generator-based context
    manager: every proxied request goes through one."""

    __slots__ = ("_engines", "_request", "_response", "_upstream")

    def __init__(self, engines: Engines, request: _Request) -> None:
        self._engines = engines
        self._request = request
        self._response: aiohttp.ClientResponse | None = None
        self._upstream: Upstream | None = None

    async def __aenter__(self) -> tuple[aiohttp.ClientResponse, Upstream]:
        self._response, self._upstream = await self._engines._connect(self._request)
        return self._response, self._upstream

    async def __aexit__(self, *exc: object) -> None:
        if self._response is not None and self._upstream is not None:
            self._response.close()
            self._engines._done(self._upstream)


class Engines:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        registry: Registry,
        settings: Settings,
        metrics: Metrics,
        on_connect_failure: Callable[[Upstream, str], None],
        switcher: Switcher | None = None,
    ) -> None:
        self.switcher = switcher
        self.session = session
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self.on_connect_failure = on_connect_failure

    def headers(self, request_id: str) -> dict[str, str]:
        return upstream_headers(self.settings, request_id)

    def route(self, requested: str) -> tuple[str, list[Upstream]]:
        """The served model id and the engines serving it (404/503 if none)."""
        return self.registry.candidates(requested)

    def post(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str],
        model: str,
        candidates: Sequence[Upstream],
        dispatch: Dispatch | None = None,
        client_timeout: aiohttp.ClientTimeout | None = None,
    ) -> Lease:
        """`async with engines.post(...) as (response, upstream)`: POST to the least busy
        healthy candidate, moving on to the next while connecting fails; the response and
        its engine are leased until the block ends."""
        request = _Request(path, body, headers, model, candidates, dispatch, client_timeout)
        return Lease(self, request)

    async def _connect(self, request: _Request) -> tuple[aiohttp.ClientResponse, Upstream]:
        """The response of the first engine that takes the request, counted in flight on
        it (the caller gives the count back)."""
        tried: list[Upstream] = []
        dispatch = request.dispatch
        while (upstream := choose(request.candidates, tried)) is not None:
            tried.append(upstream)
            if upstream.group is not None and self.switcher is not None:
                # A grouped engine may be asleep: wait for it (or a 503 with retry-after).
                waited = await self.switcher.acquire(upstream)
                if dispatch is not None:
                    dispatch.switch_wait_s = waited
            upstream.in_flight += 1  # from the moment it is sent: the engine thinks meanwhile
            if dispatch is not None:
                dispatch.dispatched = True
            try:
                response = await self.session.post(
                    upstream.url + request.path,
                    data=request.body,
                    headers=request.headers,
                    # Given explicitly, None would mean no timeout at all.
                    timeout=request.client_timeout or self.session.timeout,
                )
            except CONNECT_ERRORS as exc:
                self._done(upstream)
                if dispatch is not None:
                    dispatch.dispatched = False
                self._connect_failed(upstream, exc)
                continue
            except _TIMEOUTS as exc:
                self._done(upstream)
                self.metrics.upstream_errors.labels(upstream.url, "timeout").inc()
                raise translate(exc, f"for model `{request.model}`") from exc
            except BaseException:
                self._done(upstream)
                raise
            return response, upstream
        if not tried:
            raise UpstreamUnavailable(
                f"No healthy inference engine serves `{request.model}` right now; "
                "see /readyz for each engine's state."
            )
        raise UpstreamUnavailable(
            f"Could not reach any inference engine serving `{request.model}` ({len(tried)} tried)."
        )

    def _done(self, upstream: Upstream) -> None:
        upstream.in_flight -= 1
        if upstream.group is not None and self.switcher is not None:
            self.switcher.release(upstream)

    def _connect_failed(self, upstream: Upstream, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.metrics.upstream_errors.labels(upstream.url, "connect").inc()
        log.warning("upstream connect failed", extra={"upstream": upstream.url, "error": reason})
        self.on_connect_failure(upstream, reason)

    async def post_json(
        self,
        path: str,
        body: dict[str, Any],
        *,
        model: str,
        request_id: str,
        candidates: Sequence[Upstream] | None = None,
        client_timeout: aiohttp.ClientTimeout | None = None,
    ) -> Reply:
        """A JSON call to an engine serving `model` (its served id goes in the body)."""
        served, found = self.route(model) if candidates is None else (model, list(candidates))
        data = orjson.dumps({**body, "model": served})
        async with self.post(
            path, data, self.headers(request_id), served, found, client_timeout=client_timeout
        ) as (response, upstream):
            try:
                raw = await response.read()
            except (aiohttp.ClientError, *_TIMEOUTS) as exc:
                raise translate(exc, f"while answering {path}") from exc
            status = response.status
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = None
        return Reply(status, payload, upstream.url)
