"""Server-sent events as vLLM sends them, handled as bytes.

Events are split on their blank-line boundary and relayed untouched; only events that
mention usage or an error are parsed, so the common token chunk costs one substring test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import error_body

DONE = b"data: [DONE]\n\n"


class EventSplitter:
    """Feeds arbitrary byte chunks, yields whole events (each ending in a blank line)."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._tail + chunk if self._tail else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        end = data.rfind(b"\n\n")
        if end < 0:
            self._tail = data
            return []
        self._tail = data[end + 2 :]
        return [event + b"\n\n" for event in data[:end].split(b"\n\n") if event.strip()]

    def flush(self) -> bytes:
        """Whatever was left without a closing blank line (a truncated stream)."""
        tail, self._tail = self._tail, b""
        return tail


def event_data(event: bytes) -> bytes:
    """The payload of an event's `data:` lines, joined as the SSE spec says."""
    lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines)


@dataclass(slots=True)
class StreamUsage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    chunks: int = 0  # content chunks seen: an estimate of tokens when the stream is cut short


def event_payload(event: bytes) -> Any:
    """An event's data as JSON, None if it is not JSON."""
    try:
        return orjson.loads(event_data(event))
    except orjson.JSONDecodeError:
        return None


def is_usage_chunk(event: bytes, usage: StreamUsage) -> bool:
    """Record usage from a chat/completions chunk; True if it is the usage-only chunk."""
    if b'"usage"' not in event:
        usage.chunks += 1
        return False
    payload = event_payload(event)
    if not isinstance(payload, dict):
        return False
    found = payload.get("usage")
    if isinstance(found, dict):
        usage.prompt_tokens = found.get("prompt_tokens", usage.prompt_tokens)
        usage.completion_tokens = found.get("completion_tokens", usage.completion_tokens)
    if payload.get("choices"):
        usage.chunks += 1
        return False
    return isinstance(found, dict)


def responses_usage(event: bytes, usage: StreamUsage) -> None:
    """Responses API streams: usage arrives in the `response.completed` event (or
    `response.incomplete`, when `max_output_tokens` cut the answer short). Only the
    `*.delta` events carry generated text (about a token each): the others (created,
    item added, part done, ...) do not count towards a cut stream's tokens."""
    if b'.delta"' in event:
        usage.chunks += 1
        return
    if b'"usage"' not in event or (
        b"response.completed" not in event and b"response.incomplete" not in event
    ):
        return
    payload = event_payload(event)
    if isinstance(payload, dict):
        found = (payload.get("response") or {}).get("usage")
        if isinstance(found, dict):
            usage.prompt_tokens = found.get("input_tokens")
            usage.completion_tokens = found.get("output_tokens")


def normalise_error_event(event: bytes) -> bytes:
    """Older vLLM streams send flat `{"object": "error", ...}` bodies; the SDKs expect
    `{"error": {...}}`. Anything else passes unchanged."""
    if b'"error"' not in event:
        return event
    payload = event_payload(event)
    if isinstance(payload, dict) and payload.get("object") == "error":
        return b"data: " + orjson.dumps(normalise_error_body(payload)) + b"\n\n"
    return event


CONTEXT_OVERFLOW_PREFIX = "This model's maximum context length is"


def normalise_error_body(payload: Any, status: int = 500, fallback: str = "") -> dict[str, Any]:
    """Any upstream error body, in the OpenAI shape. Context overflows get the code that
    LangChain and litellm look for to trim history."""
    body = _normalise(payload, status, fallback)
    inner = body["error"]
    if str(inner.get("message", "")).startswith(CONTEXT_OVERFLOW_PREFIX):
        inner["code"] = "context_length_exceeded"
    return body


def _normalise(payload: Any, status: int, fallback: str) -> dict[str, Any]:
    if isinstance(payload, dict):
        inner = payload.get("error")
        if isinstance(inner, dict) and "message" in inner:
            inner.setdefault("type", "invalid_request_error" if status < 500 else "server_error")
            inner.setdefault("param", None)
            inner.setdefault("code", None)
            return payload
        if isinstance(inner, str):
            payload = {"message": inner, **{k: v for k, v in payload.items() if k != "error"}}
        if "message" in payload or "detail" in payload:
            message = payload.get("message") or payload.get("detail")
            return error_body(
                str(message),
                str(payload.get("type") or _type_for(status)),
                payload.get("param"),
                _code(payload.get("code")),
            )
    return error_body(fallback or f"Upstream error (HTTP {status}).", _type_for(status))


def _type_for(status: int) -> str:
    return "invalid_request_error" if status < 500 else "server_error"


def _code(code: Any) -> str | None:
    # vLLM's flat errors carry the HTTP status as an int `code`; OpenAI's codes are strings.
    return code if isinstance(code, str) else None
