"""The one path every proxied request takes, whatever its API family, as pure ASGI:

    key → (the family's checks) → model access → quota and limits → relay → settle and meter

A family (OpenAI in openai_proxy.py, Anthropic Messages in anthropic_routes.py, vLLM's
other serving routes in serving_routes.py) says how to read its request (`_handle`) and
which `Dialect` its answers speak: where their usage is, what shape errors take. Every
step reads the request's `Call`.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI

from gateway.admission.cost import Cost
from gateway.admission.guard import Pass, check_model_access, cost
from gateway.errors import GatewayError, InvalidRequest, UnsupportedMediaType, UpstreamUnavailable
from gateway.http.asgi import ClientGone, RawHeaders, Receive, Scope, Send, header, send_bytes
from gateway.http.context import RequestContext, get_context
from gateway.http.errors import error_headers
from gateway.keys.end_users import end_user_of
from gateway.state import AppState, state_of
from gateway.upstream.dialect import OPENAI, Dialect
from gateway.upstream.registry import Upstream
from gateway.upstream.relay import RelayRequest, RelayResult
from gateway.usage import event_from_request


def check_content_type(scope: Scope) -> None:
    content_type = header(scope, b"content-type")
    # A missing type is tolerated (the body must still parse); a wrong one is refused.
    if content_type is not None and not content_type.lower().startswith(b"application/json"):
        raise UnsupportedMediaType(
            f"Unsupported Content-Type `{content_type.decode('latin-1')}`: send a JSON body "
            "with `Content-Type: application/json`."
        )


def parse_json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON ({exc.msg} at position {exc.pos})."
        ) from None


_STOPPING = (
    "The gateway is shutting down and cut this request short; retry it (another replica, "
    "or this one once it is back, will serve it)."
)


@dataclass(slots=True)
class Call:
    """One request on its way through a guarded route."""

    state: AppState
    ctx: RequestContext
    granted: Pass
    scope: Scope
    receive: Receive
    send: Send
    # Filled in by the relay as it goes, so that a request cancelled mid-relay still
    # knows what reached the engine and the client.
    relayed: RelayResult


class GuardedRoute(ABC):
    dialect: Dialect = OPENAI

    def __init__(self, api: FastAPI, path: str) -> None:
        self.api = api
        self.path = path

    @abstractmethod
    async def _handle(self, call: Call) -> None:
        """Read and check this family's request, admit it, relay it."""

    async def send_error(self, send: Send, exc: GatewayError) -> int:
        status, body = self.dialect.error(exc)
        await send_bytes(send, status, body, headers=error_headers(exc))
        return status

    @staticmethod
    def identify_end_user(call: Call, body: dict[str, Any]) -> None:
        """The person a trusted front end (Open WebUI) sends this request for, who gets
        limits and usage of their own; an untrusted key's headers and `user` field are
        never read."""
        granted = call.granted
        if granted.key is None or not granted.key.trusted_front_end:
            return
        secret = call.state.settings.end_user_jwt_secret
        person = end_user_of(
            granted.key,
            call.scope["headers"],
            body,
            secret.get_secret_value() if secret is not None else None,
        )
        granted.end_user = person.id if person is not None else None

    @staticmethod
    def route_model(call: Call, requested: str) -> tuple[str, list[Upstream]]:
        """The served model (aliases resolved) and its engines, if the key may use it."""
        engines = call.state.engines
        check_model_access(call.granted.key, engines.registry.served_id(requested), requested)
        model, candidates = engines.route(requested)
        call.ctx.model = model
        return model, candidates

    @staticmethod
    async def relay(call: Call, request: RelayRequest, candidates: Sequence[Upstream]) -> None:
        relayed = call.relayed
        await call.state.relay.forward(request, candidates, call.receive, call.send, relayed)
        call.ctx.upstream = relayed.upstream

    def relay_request(
        self,
        call: Call,
        body: bytes,
        model: str,
        *,
        stream: bool = False,
        strip_usage: bool = False,
        path: str | None = None,
        headers: RawHeaders | None = None,
    ) -> RelayRequest:
        """What goes to the engine; `headers`: the client's own that it should see too."""
        sent = call.state.engines.headers(call.ctx.request_id)
        for name, value in headers or ():
            sent[name.decode("latin-1")] = value.decode("latin-1")
        return RelayRequest(
            path=path or self.path,
            body=body,
            headers=sent,
            model=model,
            stream=stream,
            strip_usage=strip_usage,
            started=call.ctx.started,
            extra_headers=call.granted.headers,
            dialect=self.dialect,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        ctx.route = self.path
        state = state_of(self.api.state)
        in_flight = state.metrics.child(state.metrics.in_flight, self.path)
        in_flight.inc()
        # Until its usage is recorded: a graceful stop waits for that before the last flush.
        state.unrecorded.enter()
        call = Call(state, ctx, Pass(), scope, receive, send, RelayResult())
        granted, relayed = call.granted, call.relayed
        status, client_left = 0, False
        try:
            try:
                if scope["method"] != "POST":
                    raise InvalidRequest(f"Use POST for {self.path}.")
                granted.key = await state.guard.authenticate(scope)
                ctx.key_id = granted.key.id if granted.key else None
                await self._handle(call)
                status, client_left = relayed.status or 499, relayed.cancelled
            except GatewayError as exc:
                # Raised after the request reached an engine (one that went silent), it
                # is still metered: the engine worked on it until the gateway gave up.
                status = await self.send_error(send, exc)
            except ClientGone:
                relayed.cancelled = True
                status, client_left = 499, True
        except BaseException as exc:
            # The server cancelling us (a graceful stop that gave up waiting) or a bug: the
            # engine may have worked all the same, so it is metered as cancelled. Recorded
            # before anything awaits, then the slot is freed now rather than when its
            # lease expires.
            relayed.cancelled = True
            stopping = isinstance(exc, asyncio.CancelledError)
            await self._finish(call, 503 if stopping else 500, client_left=False, answered=False)
            if stopping:
                await self._say_stopping(send, relayed)
            raise
        else:
            await self._finish(call, status, client_left=client_left, answered=True)
        finally:
            in_flight.dec()

    async def _say_stopping(self, send: Send, relayed: RelayResult) -> None:
        """Tell the client why its request ends here, briefly: the process is going away."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):  # a client that reads nothing must not hold us
                if relayed.sse_open:
                    event = self.dialect.stream_error(_STOPPING, "server_shutting_down", 503)
                    await send({"type": "http.response.body", "body": event, "more_body": False})
                else:  # refused by the server if a whole answer already went out
                    error = UpstreamUnavailable(_STOPPING, code="server_shutting_down")
                    await self.send_error(send, error)

    async def _finish(self, call: Call, status: int, *, client_left: bool, answered: bool) -> None:
        try:
            charged = cost(call.granted, call.relayed)
            self._meter(call, charged, client_left)
            self._record(call, charged, status)
            await call.state.guard.settle(call.granted, charged, answered=answered)
        finally:
            call.state.unrecorded.leave()

    def _meter(self, call: Call, cost: Cost, client_left: bool) -> None:
        metrics, ctx, result = call.state.metrics, call.ctx, call.relayed
        if client_left:
            metrics.child(metrics.client_disconnects, self.path).inc()
        if result.ttft_s is not None:
            metrics.child(metrics.ttft, ctx.model).observe(result.ttft_s)
        if cost.prompt_tokens:
            metrics.child(metrics.tokens, ctx.model, "prompt").inc(cost.prompt_tokens)
        if cost.completion_tokens:
            metrics.child(metrics.tokens, ctx.model, "completion").inc(cost.completion_tokens)

    def _record(self, call: Call, cost: Cost, status: int) -> None:
        ctx, granted, result = call.ctx, call.granted, call.relayed
        if granted.key is None:
            return
        call.state.guard.record(
            event_from_request(
                request_id=ctx.request_id,
                key_id=granted.key.id,
                model=ctx.model,
                route=self.path,
                started=ctx.started,
                status=status,
                upstream=result.upstream,
                prompt_tokens=cost.prompt_tokens,
                completion_tokens=cost.completion_tokens,
                ttft_s=result.ttft_s,
                streamed=result.streamed,
                cancelled=result.cancelled,
                end_user=granted.end_user,
            )
        )
