"""What an admitted request carries to its response headers and to `Limiter.settle`."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.limits.bucket import Limits


@dataclass(frozen=True, slots=True)
class Quota:
    """One limit as OpenAI's `x-ratelimit-*-{requests,tokens}` headers describe it."""

    limit: int
    remaining: int
    reset_s: float


@dataclass(slots=True)
class Admission:
    key_id: str
    request_id: str
    limits: Limits
    estimated_tokens: int
    # Where the reservation lives ("memory" | "redis"); None when the key has no limits.
    backend: str | None
    requests: Quota | None = None
    tokens: Quota | None = None
    # Settling twice (say, in an error path and again in `finally`) must not refund twice.
    settled: bool = False
