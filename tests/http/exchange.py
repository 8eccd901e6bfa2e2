"""Calling a pure ASGI app by hand: a scope, the messages the client sends, and a record of
what the app sent back. No server in between, so a test sees exactly the ASGI messages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from gateway.http.asgi import ASGIApp, Message, Receive, Scope, Send


def http_scope(
    path: str = "/",
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    **extra: object,
) -> Scope:
    """An HTTP scope as uvicorn builds it: lower-case header names, as bytes."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    scope.update(extra)
    return scope


class Exchange:
    """One request's two directions. `receive` hands out `incoming` in order and then
    waits (a client that stays connected) until `disconnect()` is called."""

    def __init__(self, incoming: Iterable[Message] = ()) -> None:
        self._incoming: asyncio.Queue[Message] = asyncio.Queue()
        for message in incoming:
            self._incoming.put_nowait(message)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return await self._incoming.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def disconnect(self) -> None:
        self._incoming.put_nowait({"type": "http.disconnect"})

    @property
    def status(self) -> int:
        [start] = [m for m in self.sent if m["type"] == "http.response.start"]
        return int(start["status"])

    @property
    def headers(self) -> dict[str, str]:
        """The response's headers; a repeated name keeps its last value."""
        [start] = [m for m in self.sent if m["type"] == "http.response.start"]
        return {k.decode(): v.decode() for k, v in start.get("headers", ())}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def body_messages(*chunks: bytes) -> list[Message]:
    """A request body sent in `chunks` (one empty message for no body)."""
    if not chunks:
        return [{"type": "http.request", "body": b"", "more_body": False}]
    last = len(chunks) - 1
    return [
        {"type": "http.request", "body": chunk, "more_body": i < last}
        for i, chunk in enumerate(chunks)
    ]


async def call(app: ASGIApp, scope: Scope, incoming: Iterable[Message] = ()) -> Exchange:
    exchange = Exchange(incoming)
    await app(scope, exchange.receive, exchange.send)
    return exchange


class Recorder:
    """An app that records the scope and `send` it was called with and answers `status`
    with `body`; what the middleware under test passed on is then plain to see."""

    def __init__(self, status: int = 200, body: bytes = b"ok", name: str = "app") -> None:
        self.status = status
        self.body = body
        self.name = name
        self.scopes: list[Scope] = []
        self.sends: list[Send] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        self.sends.append(send)
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"text/plain"), (b"x-app", self.name.encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})
