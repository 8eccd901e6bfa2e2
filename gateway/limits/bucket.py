"""Token-bucket arithmetic for per-key limits: pure, no I/O, `now` always passed in.

A limit of N per minute is a bucket holding at most N that refills at N/60 per second, so a
fresh key may burst its whole minute at once (rpm=20 admits exactly 20 of 30 simultaneous
requests) and then gets one more every 3 s. Token reservations may be corrected afterwards
and can push a bucket below zero (debt), which later requests wait out.

The Redis backend runs the same rules in Lua (`_lua.py`); keep the two in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

WINDOW_S = 60.0
# Levels are floats refilled by fractions; without a little slack, "limit reached at exactly
# this instant" would depend on rounding in the last bit.
EPSILON = 1e-9
# Nobody can say when an in-flight request will finish; this is only a hint for clients.
PARALLEL_RETRY_S = 1.0

Refused = Literal["requests", "tokens", "parallel"]


def refill(level: float, elapsed_s: float, limit: int) -> float:
    """The bucket level `elapsed_s` after it was `level` (clamped to a possibly lowered limit)."""
    if elapsed_s <= 0:
        return min(level, float(limit))
    return min(float(limit), level + elapsed_s * limit / WINDOW_S)


def wait_s(level: float, cost: float, limit: int) -> float:
    """Seconds until the bucket holds `cost`; 0 if it already does, inf if it never can."""
    if cost > limit:
        return math.inf
    short = cost - level
    return 0.0 if short <= EPSILON else short * WINDOW_S / limit


def reset_s(level: float, limit: int) -> float:
    """Seconds until the bucket is full again (OpenAI's `x-ratelimit-reset-*`)."""
    return max(0.0, (limit - level) * WINDOW_S / limit) if limit > 0 else 0.0


def remaining(level: float) -> int:
    """Whole units left now; debt reads as 0."""
    return max(0, math.floor(level + EPSILON))


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.max_parallel is None


@dataclass(frozen=True, slots=True)
class Decision:
    admitted: bool
    # The limit with the longest wait when refused; None when admitted.
    refused: Refused | None
    retry_after_s: float
    # Bucket levels after the decision (reservation taken if admitted); 0 for absent limits.
    requests: float
    tokens: float
    in_flight: int


def never_fits(limits: Limits, cost_tokens: int) -> Refused | None:
    """The limit no amount of waiting can satisfy, if any (checked before touching state)."""
    if limits.rpm is not None and limits.rpm < 1:
        return "requests"
    if limits.tpm is not None and cost_tokens > limits.tpm:
        return "tokens"
    if limits.max_parallel is not None and limits.max_parallel < 1:
        return "parallel"
    return None


def evaluate(
    limits: Limits,
    *,
    requests: float | None,
    tokens: float | None,
    elapsed_s: float,
    cost_tokens: int,
    in_flight: int,
) -> Decision:
    """Admit one request costing `cost_tokens`, or refuse it taking nothing.

    `requests`/`tokens` are the stored levels (None for a key never seen: a full bucket),
    `elapsed_s` the time since they were stored, `in_flight` the live (unexpired) leases.
    """
    req = tok = 0.0
    refused: Refused | None = None
    wait = 0.0
    if limits.rpm is not None:
        req = refill(limits.rpm if requests is None else requests, elapsed_s, limits.rpm)
        w = wait_s(req, 1, limits.rpm)
        if w > wait:
            refused, wait = "requests", w
    if limits.tpm is not None:
        tok = refill(limits.tpm if tokens is None else tokens, elapsed_s, limits.tpm)
        w = wait_s(tok, cost_tokens, limits.tpm)
        if w > wait:
            refused, wait = "tokens", w
    if (
        limits.max_parallel is not None
        and in_flight >= limits.max_parallel
        and wait < PARALLEL_RETRY_S
    ):
        refused, wait = "parallel", PARALLEL_RETRY_S
    if refused is not None:
        return Decision(False, refused, wait, req, tok, in_flight)
    if limits.rpm is not None:
        req -= 1
    if limits.tpm is not None:
        tok -= cost_tokens
    if limits.max_parallel is not None:
        in_flight += 1
    return Decision(True, None, 0.0, req, tok, in_flight)


def settle_tokens(tokens: float | None, elapsed_s: float, tpm: int, delta: int) -> float:
    """The token level after correcting a reservation by `delta` = actual - estimate.

    A refund never overfills the bucket; an overrun may leave it in debt.
    """
    level = refill(tpm if tokens is None else tokens, elapsed_s, tpm)
    return min(float(tpm), level - delta)


def idle_after_s(limits: Limits, requests: float, tokens: float) -> float:
    """Seconds until both buckets are full, i.e. the stored state equals a fresh key's."""
    idle = 0.0
    if limits.rpm is not None:
        idle = reset_s(requests, limits.rpm)
    if limits.tpm is not None:
        idle = max(idle, reset_s(tokens, limits.tpm))
    return idle
