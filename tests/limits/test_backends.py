"""The limiter's behaviour, identical on the memory backend and on a real Redis."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import RateLimited, RequestTooLarge
from gateway.limits import Admission, Limiter, ratelimit_headers
from gateway.metrics import Metrics
from tests.limits.conftest import LEASE_S, FakeClock, LimiterFactory, key

pytestmark = pytest.mark.parametrize("backend", ["memory", "redis"])


async def burst(limiter: Limiter, record: object, n: int, tokens: int = 0) -> list[object]:
    return await asyncio.gather(
        *(limiter.admit(record, f"req-{i}", tokens) for i in range(n)),  # type: ignore[arg-type]
        return_exceptions=True,
    )


async def test_rpm_admits_exactly_the_limit_of_a_burst(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    metrics = Metrics()
    limiter = await make_limiter(backend, clock=clock, metrics=metrics)
    results = await burst(limiter, key(rpm=20), 30)
    admitted = [r for r in results if isinstance(r, Admission)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert (len(admitted), len(refused)) == (20, 10)
    assert {a.backend for a in admitted} == {backend}
    exc = refused[0]
    assert exc.status == 429
    assert exc.code == "rate_limit_exceeded"
    assert exc.message == (
        "Rate limit reached for requests per minute (rpm): limit 20, used 20, requested 1. "
        "Please try again in 3s."
    )
    assert exc.headers["retry-after"] == "3"
    assert exc.headers["retry-after-ms"] == "3000"
    assert exc.headers["x-ratelimit-remaining-requests"] == "0"
    assert exc.headers["x-ratelimit-reset-requests"] == "1m0s"
    assert metrics.registry.get_sample_value("gateway_rate_limited_total", {"kind": "requests"})
    assert limiter.backend_name == backend


async def test_rpm_refills_at_limit_per_60s(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    record = key(rpm=20)
    await burst(limiter, record, 20)
    clock.advance(2.9)
    with pytest.raises(RateLimited) as info:
        await limiter.admit(record, "late", 0)
    assert info.value.headers["retry-after-ms"] == "100"
    clock.advance(0.1)
    admission = await limiter.admit(record, "one-more", 0)
    assert admission.requests is not None
    assert admission.requests.remaining == 0
    clock.advance(60)
    results = await burst(limiter, record, 25)
    assert sum(isinstance(r, Admission) for r in results) == 20


async def test_headers_of_an_admission(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    admission = await limiter.admit(key(rpm=20, tpm=1000), "r", 300)
    assert ratelimit_headers(admission) == [
        (b"x-ratelimit-limit-requests", b"20"),
        (b"x-ratelimit-remaining-requests", b"19"),
        (b"x-ratelimit-reset-requests", b"3s"),
        (b"x-ratelimit-limit-tokens", b"1000"),
        (b"x-ratelimit-remaining-tokens", b"700"),
        (b"x-ratelimit-reset-tokens", b"18s"),
    ]
    only_rpm = await limiter.admit(key(rpm=5), "r", 300)
    assert ratelimit_headers(only_rpm)[0][0] == b"x-ratelimit-limit-requests"
    assert len(ratelimit_headers(only_rpm)) == 3


async def test_tpm_reserves_the_estimate_and_refuses_beyond_it(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    record = key(rpm=20, tpm=1000)
    results = await burst(limiter, record, 3, tokens=400)
    assert sum(isinstance(r, Admission) for r in results) == 2
    exc = next(r for r in results if isinstance(r, RateLimited))
    # 200 left, 400 wanted: 200 tokens at 1000/min is 12 s.
    assert exc.message == (
        "Rate limit reached for tokens per minute (tpm): limit 1000, used 800, requested 400. "
        "Please try again in 12s."
    )
    assert exc.headers["retry-after"] == "12"
    # The refused request took no request either: 18 of 20 left after one more admission.
    small = await limiter.admit(record, "small", 100)
    assert small.requests is not None and small.requests.remaining == 17
    assert small.tokens is not None and small.tokens.remaining == 100


async def test_settle_reconciles_tokens(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    record = key(tpm=1000)
    first = await limiter.admit(record, "a", 400)
    # Used only 100: 300 come back, so 900 are free again.
    await limiter.settle(first, 100)
    await limiter.settle(first, 100)  # twice is harmless
    second = await limiter.admit(record, "b", 900)
    assert second.tokens is not None and second.tokens.remaining == 0
    # Used 1400 on a 900 estimate: 500 in debt, so even 100 waits 36 s.
    await limiter.settle(second, 1400)
    with pytest.raises(RateLimited) as info:
        await limiter.admit(record, "c", 100)
    assert info.value.headers["retry-after"] == "36"
    assert "used 1500" in info.value.message
    clock.advance(36)
    assert (await limiter.admit(record, "d", 100)).tokens is not None


async def test_settle_without_usage_keeps_the_estimate(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    record = key(tpm=1000)
    await limiter.settle(await limiter.admit(record, "a", 600), None)
    with pytest.raises(RateLimited):
        await limiter.admit(record, "b", 600)


async def test_estimate_over_tpm_can_never_fit(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    metrics = Metrics()
    limiter = await make_limiter(backend, clock=clock, metrics=metrics)
    with pytest.raises(RequestTooLarge) as info:
        await limiter.admit(key(tpm=1000), "r", 1001)
    exc = info.value
    assert exc.status == 429
    assert not exc.retryable  # rendered with x-should-retry: false
    assert "retry-after" not in exc.headers
    assert exc.message.startswith(
        "Request too large for tokens per minute (tpm): limit 1000, requested 1001. "
        "It can never fit"
    )
    assert metrics.registry.get_sample_value("gateway_rate_limited_total", {"kind": "too_large"})


async def test_slots_released_on_settle(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    record = key(max_parallel=2)
    results = await burst(limiter, record, 3)
    admitted = [r for r in results if isinstance(r, Admission)]
    assert len(admitted) == 2
    exc = next(r for r in results if isinstance(r, RateLimited))
    assert exc.message == (
        "Rate limit reached for parallel requests: limit 2, in flight 2. "
        "Please try again when one of them finishes."
    )
    assert exc.headers["retry-after"] == "1"
    await limiter.settle(admitted[0], None)
    await limiter.settle(admitted[0], None)  # twice frees one slot, not two
    await limiter.admit(record, "next", 0)
    with pytest.raises(RateLimited):
        await limiter.admit(record, "one-too-many", 0)


async def test_leaked_lease_expires(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    record = key(max_parallel=1)
    await limiter.admit(record, "never-settled", 0)  # its replica died: no renewal
    clock.advance(LEASE_S - 1)
    with pytest.raises(RateLimited):
        await limiter.admit(record, "too-soon", 0)
    clock.advance(1)
    await limiter.admit(record, "after-expiry", 0)


async def test_keys_without_limits_short_circuit(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    record = key()
    admissions = [await limiter.admit(record, f"r{i}", 10**9) for i in range(100)]
    assert {a.backend for a in admissions} == {None}
    assert ratelimit_headers(admissions[0]) == []
    await limiter.settle(admissions[0], 5)
