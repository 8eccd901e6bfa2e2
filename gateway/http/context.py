"""Per-request context, the request id, access logging and request metrics, as pure ASGI.

The context lives in the ASGI scope so handlers deep in the stack can fill in what only
they know (route template, model, key) for the access log and metrics written here.

It is also the error boundary of the pure-ASGI routes: an exception that escapes becomes
a 503 if it means the database is down (`gateway.db.outage`), else an OpenAI-shaped 500
that quotes the request id; the traceback goes to the log only. (FastAPI's routes answer
through `gateway.http.exception_handlers`; the exception still reaches here to be logged.)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gateway.db.outage import outage
from gateway.http import anthropic_errors
from gateway.http.asgi import JSON, ASGIApp, Message, RawHeaders, Receive, Scope, Send, header
from gateway.http.errors import error_headers, internal_error
from gateway.http.ids import new_id
from gateway.logs import AccessLog, printable
from gateway.metrics import Metrics

error_log = logging.getLogger("gateway.error")

CONTEXT_KEY = "gateway.context"
_MAX_REQUEST_ID = 128


@dataclass(slots=True)
class RequestContext:
    request_id: str
    started: float
    route: str = "other"
    model: str = ""
    status: int = 0
    key_id: str | None = None
    upstream: str | None = None


def get_context(scope: Scope) -> RequestContext:
    return scope[CONTEXT_KEY]  # type: ignore[no-any-return]


def _request_id(scope: Scope) -> str:
    given = header(scope, b"x-request-id")
    if given:
        text = given.decode("latin-1")
        # A client-chosen id ends up in logs and upstream headers: keep it short and printable.
        if len(text) <= _MAX_REQUEST_ID and text.isprintable():
            return text
    return new_id()


def _route_label(scope: Scope) -> str:
    # FastAPI/Starlette routes record their template; unknown paths collapse to "other".
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = RequestContext(request_id=_request_id(scope), started=time.perf_counter())
        scope[CONTEXT_KEY] = ctx
        rid_header = (b"x-request-id", ctx.request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                ctx.status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            unavailable = outage(exc)
            extra = {"request_id": ctx.request_id}
            if unavailable is not None:
                error_log.warning("database unreachable (%s)", type(exc).__name__, extra=extra)
            else:
                error_log.exception("unhandled error", extra=extra)
            if not started:
                body = internal_error(ctx.request_id)
                ctx.status, extra_headers = 500, []
                if unavailable is not None:
                    body, ctx.status = unavailable.to_bytes(), unavailable.status
                    extra_headers = error_headers(unavailable)
                if scope["path"].startswith(anthropic_errors.PATH_PREFIX):
                    body = anthropic_errors.reshape(body, ctx.status)
                headers: RawHeaders = [
                    (b"content-type", JSON),
                    (b"content-length", str(len(body)).encode()),
                    rid_header,
                    *extra_headers,
                ]
                start = {"type": "http.response.start", "status": ctx.status, "headers": headers}
                await send(start)
                await send({"type": "http.response.body", "body": body})
        finally:
            self._record(scope, ctx)

    def _record(self, scope: Scope, ctx: RequestContext) -> None:
        elapsed = time.perf_counter() - ctx.started
        route = ctx.route if ctx.route != "other" else _route_label(scope)
        status = ctx.status or 499  # nothing sent: the client left first
        self.metrics.request_done(route, ctx.model, status, elapsed)
        if self.access_log is not None:
            # The path is the client's (percent-decoded): a `\n` or an escape sequence in it
            # must not forge a log line or repaint a terminal.
            self.access_log(
                f"{scope['method']} {printable(scope['path'])} {status}",
                {
                    "request_id": ctx.request_id,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "model": ctx.model or None,
                    "key_id": ctx.key_id,
                    "upstream": ctx.upstream,
                },
            )
