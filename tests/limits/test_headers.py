"""Header formatting: OpenAI's `x-ratelimit-*`, `retry-after` and its duration strings."""

from __future__ import annotations

import pytest

from gateway.limits.admission import Admission, Quota
from gateway.limits.bucket import Limits
from gateway.limits.headers import format_duration, ratelimit_headers, retry_after_headers


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (-1.0, "0s"),
        (0.0004, "1ms"),  # rounded up: waiting this long must be enough
        (0.02, "20ms"),
        (0.999, "999ms"),
        (0.9991, "1s"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (2.961, "2.961s"),
        (12.0, "12s"),
        (59.961, "59.961s"),
        (60.0, "1m0s"),
        (86.4, "1m26.4s"),
        (360.0, "6m0s"),
        (3600.0, "1h0m0s"),
        (3723.25, "1h2m3.25s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_ratelimit_headers_both() -> None:
    admission = Admission(
        "k",
        "r",
        Limits(rpm=20, tpm=1000),
        300,
        "memory",
        requests=Quota(20, 19, 3.0),
        tokens=Quota(1000, 700, 18.0),
    )
    assert ratelimit_headers(admission) == [
        (b"x-ratelimit-limit-requests", b"20"),
        (b"x-ratelimit-remaining-requests", b"19"),
        (b"x-ratelimit-reset-requests", b"3s"),
        (b"x-ratelimit-limit-tokens", b"1000"),
        (b"x-ratelimit-remaining-tokens", b"700"),
        (b"x-ratelimit-reset-tokens", b"18s"),
    ]


def test_ratelimit_headers_omit_absent_limits() -> None:
    only_tokens = Admission("k", "r", Limits(tpm=10), 1, "redis", tokens=Quota(10, 9, 6.0))
    assert [name for name, _ in ratelimit_headers(only_tokens)] == [
        b"x-ratelimit-limit-tokens",
        b"x-ratelimit-remaining-tokens",
        b"x-ratelimit-reset-tokens",
    ]
    assert ratelimit_headers(Admission("k", "r", Limits(), 0, None)) == []


@pytest.mark.parametrize(
    ("wait", "after", "after_ms"),
    [
        (3.0, "3", "3000"),
        (2.961, "3", "2961"),
        (0.003, "1", "3"),  # retry-after is whole seconds and at least 1
        (0.0, "1", "1"),
        (36.0001, "37", "36001"),
    ],
)
def test_retry_after(wait: float, after: str, after_ms: str) -> None:
    assert retry_after_headers(wait) == {"retry-after": after, "retry-after-ms": after_ms}
