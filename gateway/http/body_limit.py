"""Request bodies capped at the door, on every route, before anything reads them (pure ASGI).

Each request is classed by its route (`BodyClasses`: the OpenAI routes, multipart uploads,
admin JSON, console forms, anything else) and its body is held to that class's cap while
it streams in, whoever reads it: FastAPI parses a JSON body before it runs an admin
dependency, so a limit inside the routes would come after a stranger's 200 MiB was in
memory.
- `Content-Length` above the cap: refused before a byte of the body is read.
- A chunked body: counted as it arrives and refused at the message that passes the cap;
  the handler never sees more than the cap.
- A body that arrives too slowly (`Pace`): cut off with 408.

The refusal (413 or 408 in the OpenAI shape, or the class's own page for the console)
replaces whatever the handler answers, and closes the connection; so does any answer a
handler gives before it read the whole body (a stranger's 401): the rest is never
processed, and uvicorn would otherwise read and drop it for as long as the client sends.
Before closing, what the client is still sending is read and dropped for at most
`linger_s` (as nginx's lingering close): closing a socket with unread data resets the
connection, and a client still writing its body (httpx, the SDKs) would see a reset
instead of the answer.

Slow bodies are found by one sweep, every `Pace.check_every_s`, over the bodies being
read (a timer per request would cost the hot path a few microseconds); it cancels the
waiting task, the way `asyncio.timeout` does, and the wrapped `receive` turns that into
`RequestTimeout`. Requests without a body pass straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic

from gateway.errors import GatewayError, PayloadTooLarge, RequestTimeout
from gateway.http.anthropic_errors import PATH_PREFIX as ANTHROPIC_PREFIX
from gateway.http.asgi import JSON, ASGIApp, Message, RawHeaders, Receive, Scope, Send, header
from gateway.http.body_pace import Pace
from gateway.http.errors import error_headers

# (body, headers with the content type) of a refusal, for one class of routes.
Render = Callable[[Scope, GatewayError], tuple[bytes, RawHeaders]]

# Long enough for a client on a LAN to finish sending a body of a few hundred MiB.
LINGER_S = 2.0
# uvicorn closes the connection once a response with this header is sent.
_CLOSE = (b"connection", b"close")


def render_json(scope: Scope, error: GatewayError) -> tuple[bytes, RawHeaders]:
    return error.to_bytes(), [(b"content-type", JSON)]


@dataclass(frozen=True, slots=True)
class BodyClass:
    limit: int
    setting: str  # what raises the cap, named in the 413
    render: Render = render_json


@dataclass(frozen=True, slots=True)
class BodyClasses:
    proxy: BodyClass  # /v1/*: the OpenAI routes, files and vector stores
    upload: BodyClass  # multipart POST /v1/files
    admin: BodyClass  # /admin/*
    console: BodyClass  # /ui/*: urlencoded forms
    console_upload: BodyClass  # the console's upload form, streamed on to /v1/files
    other: BodyClass  # /healthz, /readyz, /metrics, unknown paths
    # /v1/messages*: the proxy's cap, refused in Anthropic's shape (None: as `proxy`)
    anthropic: BodyClass | None = None
    # vLLM's serving routes outside /v1 (/tokenize, /pooling, /rerank, ...): as `proxy`
    serving_paths: frozenset[str] = frozenset()
    audio: BodyClass | None = None  # /v1/audio/*: speech-to-text forms (None: as `proxy`)

    def classify(self, scope: Scope) -> BodyClass:
        path: str = scope["path"]
        if path.startswith("/v1/"):
            if path.rstrip("/") == "/v1/files" and _is_multipart(scope):
                return self.upload
            if path.startswith(ANTHROPIC_PREFIX) and self.anthropic is not None:
                return self.anthropic
            if path.startswith("/v1/audio/") and self.audio is not None:
                return self.audio
            return self.proxy
        if path.rstrip("/") in self.serving_paths:
            return self.proxy
        if path.startswith("/admin/") or path == "/admin":
            return self.admin
        if path.startswith("/ui/") or path == "/ui":
            if path.startswith("/ui/stores/") and path.endswith("/files") and _is_multipart(scope):
                return self.console_upload
            return self.console
        return self.other


def _is_multipart(scope: Scope) -> bool:
    content_type = header(scope, b"content-type") or b""
    return content_type.lower().startswith(b"multipart/form-data")


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool, bool]:
    """(Content-Length, whether the length is unknown, whether the client waits for
    `100 Continue` before it sends the body)."""
    length: int | None = None
    unknown = False
    expect = False
    for name, value in headers:
        if name == b"content-length":
            if value.isdigit():
                length = int(value)
            else:
                unknown = True
        elif name == b"transfer-encoding":
            unknown = True
        elif name == b"expect":
            expect = value.lower() == b"100-continue"
    return length, unknown, expect


def too_large(body_class: BodyClass) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than this route's limit of {body_class.limit} bytes "
        f"({body_class.setting}). Send a smaller body, or ask the gateway's operator to "
        f"raise {body_class.setting}."
    )


def too_slow(why: str) -> RequestTimeout:
    return RequestTimeout(
        f"The request body arrived too slowly ({why}), so the gateway stopped waiting for "
        "it. Retry over a steadier connection."
    )


class _Body:
    """One request's body as it streams in: what the sweep and the refusal need."""

    __slots__ = ("done", "received", "refused", "slow", "task", "wait_started", "waited")

    def __init__(self) -> None:
        self.received = 0
        self.waited = 0.0  # seconds spent waiting for the client, summed
        self.wait_started = 0.0
        self.task: asyncio.Task[object] | None = None  # set while waiting in receive()
        self.slow: str | None = None  # the sweep's verdict
        self.refused: GatewayError | None = None
        self.done = False  # the last body message arrived (or the client left)


class BodyLimit:
    def __init__(
        self, app: ASGIApp, classes: BodyClasses, pace: Pace, *, linger_s: float = LINGER_S
    ) -> None:
        self.app = app
        self.classes = classes
        self.pace = pace
        self.linger_s = linger_s
        self._reading: set[_Body] = set()
        self._sweep_handle: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, unknown, expect = _framing(scope["headers"])
        if not length and not unknown:  # no body at all
            await self.app(scope, receive, send)
            return
        body_class = self.classes.classify(scope)
        if length is not None and length > body_class.limit:
            # A client waiting for `100 Continue` has not sent the body: nothing to drain.
            await self._refuse(scope, receive, send, body_class, too_large(body_class), not expect)
            return
        limit = body_class.limit
        body = _Body()
        started_response = unread = False

        async def receive_body() -> Message:
            if body.refused is not None:
                return {"type": "http.disconnect"}  # a handler that reads on after a refusal
            if body.done:
                return await receive()  # e.g. a watcher waiting for the disconnect
            task = asyncio.current_task()
            body.task = task
            body.wait_started = begun = monotonic()
            try:
                message = await receive()
            except asyncio.CancelledError:
                if body.slow is None or task is None or task.uncancel() > 0:
                    raise  # not the sweep's doing (or someone else cancels too)
                body.done = True
                body.refused = too_slow(body.slow)
                raise body.refused from None
            finally:
                body.task = None
                body.waited += monotonic() - begun
            if message["type"] != "http.request":
                body.done = True
                self._reading.discard(body)
                return message
            body.received += len(message.get("body", b""))
            more = message.get("more_body", False)
            if body.received > limit:
                body.done = not more
                body.refused = too_large(body_class)
                self._reading.discard(body)
                raise body.refused
            if not more:
                body.done = True
                self._reading.discard(body)
            return message

        async def send_checked(message: Message) -> None:
            nonlocal started_response, unread
            if body.refused is not None:
                return  # once refused, the refusal is the answer
            if message["type"] == "http.response.start":
                started_response = True
                if not body.done:
                    # Answered before the body was read (a stranger's 401, a 404): the rest
                    # of it is not read either, and the connection ends with this answer.
                    # (A client still waiting for `100 Continue` has sent nothing to drain.)
                    unread = not (expect and body.received == 0)
                    message["headers"] = [*message.get("headers", ()), _CLOSE]
            elif unread and not body.done and not message.get("more_body", False):
                await send({**message, "more_body": True})
                await self._drain(receive)
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        self._reading.add(body)
        self._schedule_sweep()
        try:
            await self.app(scope, receive_body, send_checked)
        except Exception:
            if body.refused is None:
                raise
            # Whatever the handler raised followed from the refusal, which answers instead.
        finally:
            self._reading.discard(body)
        if body.refused is not None and not started_response:
            drain = isinstance(body.refused, PayloadTooLarge) and not body.done
            await self._refuse(scope, receive, send, body_class, body.refused, drain)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body_class: BodyClass,
        error: GatewayError,
        drain: bool,
    ) -> None:
        payload, headers = body_class.render(scope, error)
        headers = [
            *headers,
            (b"content-length", str(len(payload)).encode()),
            _CLOSE,
            *error_headers(error),
        ]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        # The answer is whole on the wire; the connection closes with the last message.
        await send({"type": "http.response.body", "body": payload, "more_body": drain})
        if drain:
            await self._drain(receive)
            await send({"type": "http.response.body", "body": b""})

    async def _drain(self, receive: Receive) -> None:
        """Read and drop what the client still sends, for at most `linger_s`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.linger_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body"):
                        return

    def _schedule_sweep(self) -> None:
        # One app, one event loop (the server's): the handle is that loop's.
        if self._sweep_handle is None:
            loop = asyncio.get_running_loop()
            self._sweep_handle = loop.call_later(self.pace.check_every_s, self._sweep)

    def _sweep(self) -> None:
        self._sweep_handle = None
        now = monotonic()
        for body in self._reading:
            task = body.task
            if task is None or body.slow is not None:
                continue  # not waiting for the client right now, or already cut off
            idle = now - body.wait_started
            why = self.pace.too_slow(body.received, body.waited + idle, idle)
            if why is not None:
                body.slow = why
                task.cancel()
        if self._reading:  # idle gateways stop sweeping until the next body
            self._schedule_sweep()
