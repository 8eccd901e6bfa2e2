"""Redis down: requests keep flowing on memory, one warning, a metric, and recovery.

Uses a throwaway redis-server per test (killed and restarted on the same port) and a fake
Redis that accepts connections but never answers (a hung server).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from gateway.config import Settings
from gateway.limits import Admission, Limiter
from gateway.limits.redis_backend import RedisBackend
from gateway.metrics import Metrics
from tests.conftest import missing_prerequisite
from tests.fakes.engine import free_port
from tests.limits.conftest import key

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class ThrowawayRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.2)
        deadline = time.monotonic() + 5
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


@pytest.fixture
def throwaway() -> Iterator[ThrowawayRedis]:
    if not shutil.which(REDIS_SERVER):
        missing_prerequisite("redis-server is not installed")
    server = ThrowawayRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def hung_redis_url() -> AsyncIterator[str]:
    """Accepts connections and reads forever: every command times out."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    server.close()


def sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


async def wait_for_backend(limiter: Limiter, name: str, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while limiter.backend_name != name:
        assert time.monotonic() < deadline, f"still on {limiter.backend_name}"
        await asyncio.sleep(0.02)


async def test_falls_back_then_recovers(
    throwaway: ThrowawayRedis, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    settings = Settings(redis_url=throwaway.url, slot_lease_s=60)
    limiter = await Limiter.create(settings, metrics, probe_interval_s=0.1)
    record = key(rpm=100, tpm=10_000, max_parallel=10)
    try:
        on_redis = await limiter.admit(record, "before", 100)
        assert (on_redis.backend, limiter.backend_name) == ("redis", "redis")
        assert sample(metrics, "gateway_limiter_backend", {"backend": "redis"}) == 1

        throwaway.stop()
        caplog.set_level(logging.INFO, logger="gateway.limits")
        started = time.perf_counter()
        during = [await limiter.admit(record, f"during-{i}", 100) for i in range(5)]
        assert time.perf_counter() - started < 1.0  # refused connections fail fast
        assert {a.backend for a in during} == {"memory"}
        assert limiter.backend_name == "memory"
        # Settling what Redis holds, while it is down, must not raise (its lease expires).
        await limiter.settle(on_redis, 50)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "in memory" in warnings[0].getMessage()
        assert sample(metrics, "gateway_limiter_fallbacks_total") == 1
        assert sample(metrics, "gateway_limiter_backend", {"backend": "memory"}) == 1
        assert sample(metrics, "gateway_limiter_backend", {"backend": "redis"}) == 0

        throwaway.start()  # same port, empty: no scripts loaded, stale pooled sockets
        await wait_for_backend(limiter, "redis")
        after = await limiter.admit(record, "after", 100)
        assert after.backend == "redis"
        assert any("back" in r.getMessage() for r in caplog.records)
        assert sample(metrics, "gateway_limiter_backend", {"backend": "redis"}) == 1
        # Admissions made on memory settle there, even after Redis returned.
        for admission in during:
            await limiter.settle(admission, 100)
        assert limiter._memory.in_flight(record.id) == 0
        await limiter.settle(after, 100)
    finally:
        await limiter.close()


async def test_starts_without_redis() -> None:
    metrics = Metrics()
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    limiter = await Limiter.create(settings, metrics, probe_interval_s=0.1)
    try:
        assert limiter.backend_name == "memory"
        record = key(rpm=20)
        started = time.perf_counter()
        burst = await asyncio.gather(
            *(limiter.admit(record, f"r{i}", 0) for i in range(30)), return_exceptions=True
        )
        assert time.perf_counter() - started < 0.1  # no Redis call while it is known down
        admitted = [r for r in burst if isinstance(r, Admission)]
        assert len(admitted) == 20
        assert {a.backend for a in admitted} == {"memory"}
        assert sample(metrics, "gateway_limiter_fallbacks_total") == 1
    finally:
        await limiter.close()


async def test_hung_redis_costs_one_timeout_then_memory(hung_redis_url: str) -> None:
    metrics = Metrics()
    # Built directly (no startup ping), so the hot path meets the hung server first.
    backend = RedisBackend.from_url(hung_redis_url)
    limiter = Limiter(metrics, lease_s=60, redis=backend, probe_interval_s=0.1)
    record = key(rpm=150)
    try:
        started = time.perf_counter()
        # More than the pool holds: the first calls time out, the rest skip Redis.
        results = await asyncio.gather(
            *(limiter.admit(record, f"r{i}", 0) for i in range(200)), return_exceptions=True
        )
        elapsed = time.perf_counter() - started
        assert elapsed < 1.5, elapsed
        admitted = [r for r in results if isinstance(r, Admission)]
        assert len(admitted) == 150  # memory is exact too
        assert {a.backend for a in admitted} == {"memory"}
        assert limiter.backend_name == "memory"
        assert sample(metrics, "gateway_limiter_fallbacks_total") == 1
        assert (sample(metrics, "gateway_limiter_redis_errors_total", {"op": "admit"}) or 0) >= 1
    finally:
        await limiter.close()


async def test_a_lone_timeout_does_not_switch_backends(hung_redis_url: str) -> None:
    metrics = Metrics()
    limiter = Limiter(
        metrics, lease_s=60, redis=RedisBackend.from_url(hung_redis_url), probe_interval_s=0.1
    )
    record = key(rpm=10)
    try:
        # Each of the first two pays one timeout and is admitted on memory...
        for i in range(2):
            assert (await limiter.admit(record, f"r{i}", 0)).backend == "memory"
            assert limiter.backend_name == "redis"
        # ...the third in a row means Redis is really gone.
        await limiter.admit(record, "r2", 0)
        assert limiter.backend_name == "memory"
        started = time.perf_counter()
        await limiter.admit(record, "r3", 0)
        assert time.perf_counter() - started < 0.05
        assert sample(metrics, "gateway_limiter_redis_errors_total", {"op": "admit"}) == 3
        assert sample(metrics, "gateway_limiter_fallbacks_total") == 1
    finally:
        await limiter.close()
