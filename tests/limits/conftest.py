"""Limiter fixtures: a controllable clock, and the real Redis at 127.0.0.1:6379 (db 15).

Each test gets its own key prefix and deletes only its own keys afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from gateway.keys.record import KeyRecord
from gateway.limits.limiter import Limiter
from gateway.limits.redis_backend import RedisBackend
from gateway.metrics import Metrics
from tests.conftest import missing_prerequisite

REDIS_URL = "redis://127.0.0.1:6379/15"
LEASE_S = 30.0


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def key(**limits: int | None) -> KeyRecord:
    return KeyRecord(id=f"key-{uuid.uuid4().hex[:8]}", name="test", **limits)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def redis_up() -> str | None:
    """None if Redis answers, else why not (tests that need it skip with that reason)."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"no Redis at {REDIS_URL}: {exc!r}"
    finally:
        client.close()
    return None


@pytest.fixture
def prefix(redis_up: str | None) -> Iterator[str]:
    prefix = f"gw:rltest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    if redis_up is None:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
async def redis_client(redis_up: str | None) -> AsyncIterator[AsyncRedis]:
    if redis_up is not None:
        missing_prerequisite(redis_up)
    client = AsyncRedis.from_url(REDIS_URL, socket_timeout=1)
    yield client
    await client.aclose()


LimiterFactory = Callable[..., Awaitable[Limiter]]


@pytest.fixture
async def make_limiter(prefix: str, redis_up: str | None) -> AsyncIterator[LimiterFactory]:
    """Builds limiters on `backend` ("memory" | "redis"), closed at teardown."""
    made: list[Limiter] = []

    async def make(
        backend: str,
        *,
        clock: Callable[[], float] | None = None,
        lease_s: float = LEASE_S,
        metrics: Metrics | None = None,
    ) -> Limiter:
        redis = None
        if backend == "redis":
            if redis_up is not None:
                missing_prerequisite(redis_up)
            # Generous: these tests check sharing and exactness, and a busy CI box can stall
            # a reply past the service's 0.25 s (test_fallback.py covers that timeout).
            redis = RedisBackend.from_url(REDIS_URL, prefix=prefix, timeout_s=2.0)
        limiter = Limiter(metrics or Metrics(), lease_s=lease_s, redis=redis, clock=clock)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()
