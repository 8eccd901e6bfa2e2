"""Errors in the OpenAI shape, as a response and as an SSE event: what the SDKs parse, and
the retry hints they follow (`retry-after`, `x-should-retry`)."""

from __future__ import annotations

import orjson

from gateway.errors import InvalidRequest, NeedsDatabase, RateLimited, UpstreamUnavailable
from gateway.http.errors import error_headers, internal_error, send_error, sse_error_event
from tests.http.exchange import Exchange


def test_a_deterministic_error_tells_the_sdks_not_to_retry() -> None:
    assert error_headers(InvalidRequest("bad")) == [(b"x-should-retry", b"false")]
    # Retryable by type but a configuration matter here: still no retry.
    assert (b"x-should-retry", b"false") in error_headers(NeedsDatabase("no database"))


def test_a_retryable_error_keeps_its_own_headers_lower_cased_and_no_veto() -> None:
    limited = RateLimited(
        "slow down", headers={"Retry-After": "3", "X-RateLimit-Limit-Requests": "5"}
    )
    assert error_headers(limited) == [
        (b"retry-after", b"3"),
        (b"x-ratelimit-limit-requests", b"5"),
    ]
    assert error_headers(UpstreamUnavailable("down")) == []


async def test_send_error_answers_status_shape_and_headers() -> None:
    exchange = Exchange()
    await send_error(
        exchange.send,
        RateLimited(
            "Rate limit reached.", code="rate_limit_exceeded", headers={"retry-after": "2"}
        ),
    )
    assert exchange.status == 429
    assert exchange.headers["retry-after"] == "2"
    assert exchange.headers["content-type"] == "application/json"
    assert orjson.loads(exchange.body) == {
        "error": {
            "message": "Rate limit reached.",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def test_an_error_after_the_stream_started_is_one_sse_data_event() -> None:
    event = sse_error_event("The engine went away.", code="upstream_unavailable")
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert event.count(b"\n\n") == 1  # one event: nothing a parser could split
    assert orjson.loads(event[len(b"data: ") :]) == {
        "error": {
            "message": "The engine went away.",
            "type": "server_error",
            "param": None,
            "code": "upstream_unavailable",
        }
    }


def test_the_500_quotes_the_request_id_and_nothing_else() -> None:
    error = orjson.loads(internal_error("req-123"))["error"]
    assert "req-123" in error["message"]
    assert (error["type"], error["code"], error["param"]) == (
        "server_error",
        "internal_error",
        None,
    )
