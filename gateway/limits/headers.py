"""Rate-limit response headers in OpenAI's shape (pure)."""

from __future__ import annotations

import math

from gateway.limits.admission import Admission, Quota


def format_duration(seconds: float) -> str:
    """OpenAI's reset format, Go's `time.Duration` style: "20ms", "1.5s", "6m0s", "1h0m0s".

    Rounded up to the millisecond: a client that waits exactly this long must find room.
    """
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, frac = divmod(rest, 1000)
    text = f"{secs}.{frac:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def quota_headers(requests: Quota | None, tokens: Quota | None) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    for kind, quota in ((b"requests", requests), (b"tokens", tokens)):
        if quota is None:
            continue
        headers += [
            (b"x-ratelimit-limit-" + kind, str(quota.limit).encode()),
            (b"x-ratelimit-remaining-" + kind, str(quota.remaining).encode()),
            (b"x-ratelimit-reset-" + kind, format_duration(quota.reset_s).encode()),
        ]
    return headers


def ratelimit_headers(admission: Admission) -> list[tuple[bytes, bytes]]:
    """`x-ratelimit-*` for a response; a key without a given limit gets no trio for it."""
    return quota_headers(admission.requests, admission.tokens)


def retry_after_headers(wait_s: float) -> dict[str, str]:
    """`retry-after` (whole seconds, at least 1) and the SDKs' finer `retry-after-ms`."""
    ms = max(1, math.ceil(wait_s * 1000 - 1e-6))
    return {"retry-after": str(max(1, math.ceil(ms / 1000))), "retry-after-ms": str(ms)}
