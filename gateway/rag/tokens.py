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
import orjson

log = logging.getLogger("gateway.rag")

# Counting is a courtesy: an engine slower than this to tokenize is estimated instead.
TOKENIZE_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True, slots=True)
class TokenCount:
    count: int
    max_model_len: int | None


async def count_chat_tokens(
    session: aiohttp.ClientSession,
    upstream_url: str,
    headers: dict[str, str],
    model: str,
    messages: Sequence[dict[str, Any]],
    tools: Any = None,
) -> TokenCount | None:
    """The prompt's token count as the engine would build it, or None if it cannot say."""
    body: dict[str, Any] = {"model": model, "messages": messages, "add_generation_prompt": True}
    if tools:
        body["tools"] = tools
    try:
        async with session.post(
            upstream_url + "/tokenize",
            data=orjson.dumps(body),
            headers=headers,
            timeout=TOKENIZE_TIMEOUT,
        ) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("tokenize failed", extra={"upstream": upstream_url, "error": repr(exc)})
        return None
    if status != 200:
        log.warning("tokenize refused", extra={"upstream": upstream_url, "status": status})
        return None
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    count = payload.get("count") if isinstance(payload, dict) else None
    if isinstance(count, bool) or not isinstance(count, int):
        return None
    limit = payload.get("max_model_len")
    valid_limit = isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
    return TokenCount(count, limit if valid_limit else None)
