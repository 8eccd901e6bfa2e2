"""What a refused admission says: OpenAI's 429 messages and headers, from the decision."""

from __future__ import annotations

import math

from gateway.errors import RateLimited, RequestTooLarge
from gateway.limits.admission import Quota
from gateway.limits.bucket import EPSILON, Decision, Limits
from gateway.limits.headers import format_duration, quota_headers, retry_after_headers


def _used(limit: int, level: float) -> int:
    # In debt (level < 0) more than the limit has been used; say so.
    return limit - math.floor(level + EPSILON)


def refused(
    decision: Decision,
    limits: Limits,
    cost: int,
    requests: Quota | None,
    tokens: Quota | None,
) -> RateLimited:
    wait = decision.retry_after_s
    again = f"Please try again in {format_duration(wait)}."
    if decision.refused == "requests" and limits.rpm is not None:
        message = (
            f"Rate limit reached for requests per minute (rpm): limit {limits.rpm}, "
            f"used {_used(limits.rpm, decision.requests)}, requested 1. {again}"
        )
    elif decision.refused == "tokens" and limits.tpm is not None:
        message = (
            f"Rate limit reached for tokens per minute (tpm): limit {limits.tpm}, "
            f"used {_used(limits.tpm, decision.tokens)}, requested {cost}. {again}"
        )
    else:
        message = (
            f"Rate limit reached for parallel requests: limit {limits.max_parallel}, "
            f"in flight {decision.in_flight}. Please try again when one of them finishes."
        )
    headers = retry_after_headers(wait)
    headers.update((k.decode(), v.decode()) for k, v in quota_headers(requests, tokens))
    return RateLimited(message, headers=headers)


def too_large(kind: str, limits: Limits, cost: int) -> RequestTooLarge:
    if kind == "tokens":
        message = (
            f"Request too large for tokens per minute (tpm): limit {limits.tpm}, requested "
            f"{cost}. It can never fit: lower max_tokens (or max_completion_tokens), ask "
            "for fewer answers (n) or prompts, or shorten the prompt."
        )
    elif kind == "requests":
        message = "This key's requests per minute (rpm) limit is 0: it cannot make requests."
    else:
        message = "This key's parallel request limit is 0: it cannot make requests."
    return RequestTooLarge(message)
