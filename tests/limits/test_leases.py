"""In-flight slot leases: short, renewed while their request runs, never revived once
released, and freed within about one lease when a release is lost to a Redis blip."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.errors import RateLimited
from gateway.limits import Limiter
from gateway.limits.redis_backend import RedisBackend
from gateway.metrics import Metrics
from tests.limits.conftest import LEASE_S, REDIS_URL, FakeClock, LimiterFactory, key


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_request_longer_than_the_lease_keeps_its_slot(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    record = key(max_parallel=1)
    running = await limiter.admit(record, "long", 0)
    for _ in range(4):  # four leases long
        clock.advance(LEASE_S * 0.9)
        await limiter.renew()
    with pytest.raises(RateLimited):
        await limiter.admit(record, "sneaking-past", 0)
    await limiter.settle(running, 0)
    await limiter.admit(record, "after-it", 0)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_released_lease_is_never_renewed_back(
    backend: str, make_limiter: LimiterFactory, clock: FakeClock, prefix: str
) -> None:
    limiter = await make_limiter(backend, clock=clock)
    record = key(max_parallel=1)
    await limiter.settle(await limiter.admit(record, "done", 0), 0)
    # A renewal that crossed the release on the wire (another connection, a late reply)
    # must not bring the slot back for a whole lease.
    if backend == "memory":
        revived = limiter._memory.renew(record.id, ["done"], LEASE_S, clock())
    else:
        redis = RedisBackend.from_url(REDIS_URL, prefix=prefix, timeout_s=2.0)
        revived = await redis.renew({record.id: ["done"]}, LEASE_S, clock())
        await redis.close()
    assert revived == 0
    await limiter.admit(record, "next", 0)


async def test_renewing_many_leases_is_one_round_trip(
    make_limiter: LimiterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = await make_limiter("redis")
    records = [key(max_parallel=100) for _ in range(10)]
    for record in records:
        for i in range(10):
            await limiter.admit(record, f"{record.id}-{i}", 0)
    batcher = limiter._redis._batch  # type: ignore[union-attr]
    pipelines = 0
    execute = batcher._execute

    async def counted(batch):  # type: ignore[no-untyped-def]
        nonlocal pipelines
        pipelines += 1
        return await execute(batch)

    monkeypatch.setattr(batcher, "_execute", counted)
    await limiter.renew()
    assert pipelines == 1


async def test_the_renewal_task_keeps_slots_alive_on_the_redis_clock(
    make_limiter: LimiterFactory,
) -> None:
    replica = await make_limiter("redis", lease_s=0.6)
    other = await make_limiter("redis", lease_s=0.6)
    record = key(max_parallel=1)
    running = await replica.admit(record, "long", 0)
    await asyncio.sleep(1.5)  # two and a half leases, renewed every 0.2 s
    with pytest.raises(RateLimited):
        await other.admit(record, "sneaking-past", 0)
    await replica.settle(running, 0)
    await other.admit(record, "after-it", 0)


class RedisLink:
    """A TCP relay to the test Redis that can be cut, as a network blip would."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/15"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()


@pytest.fixture
async def link(redis_client: Redis) -> AsyncIterator[RedisLink]:
    relay = RedisLink()
    yield relay
    relay.cut()


async def test_a_release_lost_to_a_redis_blip_frees_the_slot_within_a_lease(
    link: RedisLink, make_limiter: LimiterFactory, redis_client: Redis, prefix: str
) -> None:
    lease_s = 1.0
    blinking = Limiter(
        Metrics(),
        lease_s=lease_s,
        redis=RedisBackend.from_url(await link.start(), prefix=prefix, timeout_s=2.0),
    )
    other = await make_limiter("redis", lease_s=lease_s)  # another replica, still linked
    record = key(max_parallel=1)
    try:
        running = await blinking.admit(record, "long", 0)
        await asyncio.sleep(1.5)  # renewed past its first lease while it runs
        link.cut()
        released_at = time.monotonic()
        await blinking.settle(running, 0)  # lost: Redis is unreachable from this replica
        assert await redis_client.zscore(f"{prefix}{{{record.id}}}:s", "long") is not None
        with pytest.raises(RateLimited):
            await other.admit(record, "too-soon", 0)
        while True:
            await asyncio.sleep(0.1)
            try:
                await other.admit(record, "freed", 0)
                break
            except RateLimited:
                assert time.monotonic() - released_at < lease_s + 0.5, "slot still held"
    finally:
        await blinking.close()
