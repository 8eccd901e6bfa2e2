"""What differs between the API families the proxy relays, and nothing else: where an
answer says what it used, and what shape errors take. The guard, the relay and metering
are the same for all of them.

    OPENAI      chat, completions, embeddings, and vLLM's pooling, score and rerank routes
    RESPONSES   the Responses API: usage in `response.completed`
    ANTHROPIC   Messages: usage in `message_start`/`message_delta`; errors in Anthropic's
                shape and statuses
    (an API family like OPENAI but for where its usage is: `dataclasses.replace` it)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.http import anthropic_errors
from gateway.http.errors import sse_error_event
from gateway.upstream import anthropic_sse
from gateway.upstream.sse import (
    StreamUsage,
    is_usage_chunk,
    normalise_error_body,
    normalise_error_event,
    responses_usage,
)

Tokens = tuple[int | None, int | None]


def _usage(body: bytes) -> dict[str, Any] | None:
    if b'"usage"' not in body:  # most answers say it; the rest are not parsed
        return None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    usage = payload.get("usage") if isinstance(payload, dict) else None
    return usage if isinstance(usage, dict) else None


def _openai_body(body: bytes) -> Tokens | None:
    usage = _usage(body)
    if usage is None:
        return None
    # Pooling, score and rerank report prompt tokens alone: nothing was generated.
    return usage.get("prompt_tokens"), usage.get("completion_tokens") or 0


def _responses_body(body: bytes) -> Tokens | None:
    usage = _usage(body)
    return None if usage is None else (usage.get("input_tokens"), usage.get("output_tokens"))


def _anthropic_body(body: bytes) -> Tokens | None:
    usage = _usage(body)
    return None if usage is None else anthropic_sse.body_usage(usage)


def _responses_event(event: bytes, usage: StreamUsage) -> bool:
    responses_usage(event, usage)
    return False


def _openai_error(exc: GatewayError) -> tuple[int, bytes]:
    return exc.status, exc.to_bytes()


def _openai_upstream(payload: Any, status: int, fallback: str) -> bytes:
    return orjson.dumps(normalise_error_body(payload, status, fallback))


def _openai_stream_error(message: str, code: str, status: int) -> bytes:
    return sse_error_event(message, code=code)


def _anthropic_stream_error(message: str, code: str, status: int) -> bytes:
    return anthropic_errors.stream_error_event(message, anthropic_errors.error_type(status))


def _unchanged(event: bytes) -> bytes:
    return event


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    # Records a stream event's usage; True for a usage-only chunk the client may not want.
    read_event: Callable[[bytes, StreamUsage], bool]
    # (prompt, completion) tokens from a whole answer, None if it does not say.
    read_body: Callable[[bytes], Tokens | None]
    # The gateway's own error: (status, body).
    error: Callable[[GatewayError], tuple[int, bytes]]
    # An engine's error body (parsed, or None), its status and raw text: the body to send.
    upstream_error: Callable[[Any, int, str], bytes]
    # A failure after the stream started: (message, code, the status it would have had).
    stream_error: Callable[[str, str, int], bytes]
    normalise_event: Callable[[bytes], bytes] = _unchanged


OPENAI = Dialect(
    "openai",
    is_usage_chunk,
    _openai_body,
    _openai_error,
    _openai_upstream,
    _openai_stream_error,
    normalise_error_event,
)
RESPONSES = Dialect(
    "responses",
    _responses_event,
    _responses_body,
    _openai_error,
    _openai_upstream,
    _openai_stream_error,
    normalise_error_event,
)
ANTHROPIC = Dialect(
    "anthropic",
    anthropic_sse.event_usage,
    _anthropic_body,
    anthropic_errors.render,
    anthropic_errors.from_upstream,
    _anthropic_stream_error,
)
