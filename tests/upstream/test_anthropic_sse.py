"""Usage in Anthropic Messages streams and bodies, and Anthropic-shaped errors. Pure."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import (
    AuthenticationError,
    DatabaseUnavailable,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.http import anthropic_errors
from gateway.upstream.anthropic_sse import body_usage, event_usage
from gateway.upstream.dialect import ANTHROPIC
from gateway.upstream.sse import StreamUsage


def event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\n".encode() + b"data: " + orjson.dumps(payload) + b"\n\n"


def test_stream_usage_from_message_start_and_delta() -> None:
    usage = StreamUsage()
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}}
    assert not event_usage(event("message_start", start), usage)
    # Until message_delta, the answer's count is not known: a cut stream pays its deltas.
    assert (usage.prompt_tokens, usage.completion_tokens) == (9, None)
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "x"},
    }
    for _ in range(3):
        event_usage(event("content_block_delta", delta), usage)
    assert usage.chunks == 3
    final = {"type": "message_delta", "delta": {}, "usage": {"input_tokens": 9, "output_tokens": 4}}
    event_usage(event("message_delta", final), usage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (9, 4)


def test_cached_prompt_tokens_count_towards_the_prompt() -> None:
    usage = {"input_tokens": 2, "output_tokens": 5, "cache_read_input_tokens": 30}
    assert body_usage(usage) == (32, 5)
    # Anthropic's own message_delta leaves the prompt out: the start's count stays.
    stream = StreamUsage(prompt_tokens=32)
    event_usage(
        event("message_delta", {"type": "message_delta", "usage": {"output_tokens": 5}}), stream
    )
    assert (stream.prompt_tokens, stream.completion_tokens) == (32, 5)


def test_whole_message_body() -> None:
    body = orjson.dumps({"type": "message", "usage": {"input_tokens": 7, "output_tokens": 3}})
    assert ANTHROPIC.read_body(body) == (7, 3)
    assert ANTHROPIC.read_body(b'{"input_tokens": 12}') is None  # count_tokens: no usage


@pytest.mark.parametrize(
    ("error", "status", "type_"),
    [
        (InvalidRequest("m"), 400, "invalid_request_error"),
        (AuthenticationError("m"), 401, "authentication_error"),
        (PermissionDenied("m"), 403, "permission_error"),
        (NotFound("m"), 404, "not_found_error"),
        (PayloadTooLarge("m"), 413, "request_too_large"),
        (RateLimited("m"), 429, "rate_limit_error"),
        (QuotaExceeded("m"), 429, "rate_limit_error"),
        (UpstreamUnavailable("m"), 529, "overloaded_error"),
        (DatabaseUnavailable("m"), 503, "overloaded_error"),
        (UpstreamTimeout("m"), 504, "timeout_error"),
    ],
)
def test_gateway_errors_in_anthropic_shape(error: GatewayError, status: int, type_: str) -> None:
    got_status, body = anthropic_errors.render(error)
    assert got_status == status
    assert orjson.loads(body) == {"type": "error", "error": {"type": type_, "message": "m"}}


def test_stream_error_event_is_anthropic_framed() -> None:
    raw = ANTHROPIC.stream_error("gone", "upstream_disconnected", 502)
    assert raw.startswith(b"event: error\ndata: ")
    assert orjson.loads(raw.split(b"data: ", 1)[1])["error"] == {
        "type": "api_error",
        "message": "gone",
    }
