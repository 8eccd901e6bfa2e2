"""Rendering errors in the OpenAI shape, as a response or as an SSE event."""

from __future__ import annotations

import orjson

from gateway.errors import GatewayError, error_body
from gateway.http.asgi import Send, send_bytes


def error_headers(exc: GatewayError) -> list[tuple[bytes, bytes]]:
    headers = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    if not exc.retryable:
        headers.append((b"x-should-retry", b"false"))
    return headers


async def send_error(send: Send, exc: GatewayError) -> None:
    await send_bytes(send, exc.status, exc.to_bytes(), headers=error_headers(exc))


def sse_error_event(message: str, type_: str = "server_error", code: str | None = None) -> bytes:
    """A failure after a stream started: the SDKs raise on a `data: {"error": ...}` event."""
    return b"data: " + orjson.dumps(error_body(message, type_, None, code)) + b"\n\n"


def internal_error(request_id: str) -> bytes:
    """The 500 for a bug: the request id to quote, never the exception or a traceback."""
    message = (
        f"The gateway failed to handle this request (request id {request_id}); "
        "its log has the details under that id."
    )
    return orjson.dumps(error_body(message, "server_error", None, "internal_error"))
