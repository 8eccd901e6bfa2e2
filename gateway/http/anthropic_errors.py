"""Errors in Anthropic's shape, for the Messages routes only (`/v1/messages...`).

    {"type": "error", "error": {"type": "rate_limit_error", "message": "..."}}

with the statuses Anthropic's API uses: the `anthropic` SDK (and Claude Code on it) picks
its exception class, and whether to retry, by status; it reads `retry-after` as the
OpenAI SDKs do. The gateway's own errors keep their message and headers; only the body's
shape, the error type and, for an engine that is missing or unreachable, the status
(529 overloaded, which Claude Code waits out and retries) change.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError, UpstreamUnavailable
from gateway.http.asgi import JSON, RawHeaders

# Anthropic's error types by status (docs.anthropic.com/en/api/errors).
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
OVERLOADED = 529
# The routes that answer in this shape.
PATH_PREFIX = "/v1/messages"


def error_type(status: int) -> str:
    found = _TYPES.get(status)
    if found is not None:
        return found
    return "invalid_request_error" if status < 500 else "api_error"


def anthropic_body(type_: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


def status_of(exc: GatewayError) -> int:
    """No engine for the model right now: Anthropic's 'overloaded', retried by its SDKs."""
    return OVERLOADED if isinstance(exc, UpstreamUnavailable) else exc.status


def render(exc: GatewayError) -> tuple[int, bytes]:
    status = status_of(exc)
    return status, anthropic_body(error_type(status), exc.message)


def render_for_body_limit(scope: Any, exc: GatewayError) -> tuple[bytes, RawHeaders]:
    """The body limit's refusal (413, 408) on these routes."""
    return render(exc)[1], [(b"content-type", JSON)]


def stream_error_event(message: str, type_: str = "api_error") -> bytes:
    """A failure after the stream started, as Anthropic sends one: the SDK raises on it."""
    return b"event: error\ndata: " + anthropic_body(type_, message) + b"\n\n"


def from_upstream(payload: Any, status: int, fallback: str) -> bytes:
    """An engine's error body (vLLM answers these routes in Anthropic's shape with its own
    type names, and validation errors in the OpenAI shape) as Anthropic's."""
    return anthropic_body(error_type(status), _message(payload) or fallback or f"HTTP {status}")


def _message(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    inner = payload.get("error")
    if isinstance(inner, dict) and inner.get("message"):
        return str(inner["message"])
    if isinstance(inner, str):
        return inner
    found = payload.get("message") or payload.get("detail")
    return str(found) if found else None


def reshape(openai_body: bytes, status: int) -> bytes:
    """One of the gateway's OpenAI-shaped error bodies, in this shape (the error boundary
    renders a bug's 500 before it knows the route's family)."""
    try:
        payload = orjson.loads(openai_body)
    except orjson.JSONDecodeError:
        payload = None
    return from_upstream(payload, status, "")
