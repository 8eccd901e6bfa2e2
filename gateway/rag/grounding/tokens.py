"""Counting a chat prompt's tokens with the engine's own tokenizer and chat template.

vLLM's `POST /tokenize` takes the chat request's `messages` (and `tools`) and answers
`{"count", "max_model_len", "tokens"}`. tiktoken would count another model's vocabulary
(and downloads its files on first use); when the engine cannot count, callers estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.errors import GatewayError
from gateway.upstream.engines import Engines
from gateway.upstream.registry import Upstream

log = logging.getLogger("gateway.rag")

# Counting is a courtesy: an engine slower than this to tokenize is estimated instead.
TOKENIZE_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True, slots=True)
class TokenCount:
    count: int
    max_model_len: int | None


async def count_chat_tokens(
    engines: Engines,
    upstream: Upstream,
    request_id: str,
    model: str,
    messages: Sequence[dict[str, Any]],
    tools: Any = None,
) -> TokenCount | None:
    """The prompt's token count as `upstream` would build it, or None if it cannot say."""
    body: dict[str, Any] = {"messages": messages, "add_generation_prompt": True}
    if tools:
        body["tools"] = tools
    try:
        reply = await engines.post_json(
            "/tokenize",
            body,
            model=model,
            request_id=request_id,
            candidates=[upstream],
            client_timeout=TOKENIZE_TIMEOUT,
        )
    except GatewayError as exc:
        log.warning("tokenize failed", extra={"upstream": upstream.url, "error": exc.message})
        return None
    if reply.status != 200:
        log.warning("tokenize refused", extra={"upstream": upstream.url, "status": reply.status})
        return None
    payload = reply.payload
    count = payload.get("count") if isinstance(payload, dict) else None
    if isinstance(count, bool) or not isinstance(count, int):
        return None
    limit = payload.get("max_model_len")
    valid_limit = isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
    return TokenCount(count, limit if valid_limit else None)
