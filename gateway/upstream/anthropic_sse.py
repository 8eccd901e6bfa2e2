"""Usage in Anthropic Messages answers, as vLLM's `/v1/messages` writes them.

A stream opens with `message_start`, whose message carries the prompt's usage (vLLM asks
its chat engine for continuous usage stats), and ends with `message_delta`, whose usage
is the final count. Anthropic counts cached prompt tokens apart (`input_tokens` excludes
`cache_read_input_tokens` and `cache_creation_input_tokens`); the gateway meters the
whole prompt, as vLLM's `prompt_tokens` does. Only events that mention usage are parsed;
a `content_block_delta` (about one token) is counted, for a stream cut short.
"""

from __future__ import annotations

from typing import Any

from gateway.upstream.sse import StreamUsage, event_payload

_CACHE_FIELDS = ("cache_read_input_tokens", "cache_creation_input_tokens")


def prompt_tokens(usage: dict[str, Any]) -> int | None:
    found = usage.get("input_tokens")
    if not isinstance(found, int):
        return None
    return found + sum(v for f in _CACHE_FIELDS if isinstance(v := usage.get(f), int))


def body_usage(usage: dict[str, Any]) -> tuple[int | None, int | None]:
    """(prompt, completion) tokens from a whole `message`'s usage."""
    output = usage.get("output_tokens")
    return prompt_tokens(usage), output if isinstance(output, int) else None


def event_usage(event: bytes, usage: StreamUsage) -> bool:
    """Record a Messages stream event's usage. Never a chunk to strip: Anthropic's streams
    always carry their usage."""
    if b'"usage"' not in event:
        if b"content_block_delta" in event:
            usage.chunks += 1
        return False
    payload = event_payload(event)
    if not isinstance(payload, dict):
        return False
    kind = payload.get("type")
    if kind == "message_start":
        found = (payload.get("message") or {}).get("usage")
        if isinstance(found, dict):
            # The answer's count comes with message_delta: until then a cut stream is
            # charged the deltas it relayed.
            usage.prompt_tokens = prompt_tokens(found)
    elif kind == "message_delta":
        found = payload.get("usage")
        if isinstance(found, dict):
            prompt = prompt_tokens(found)
            if prompt is not None:  # Anthropic's own API leaves it out here
                usage.prompt_tokens = prompt
            output = found.get("output_tokens")
            if isinstance(output, int):
                usage.completion_tokens = output
    return False
