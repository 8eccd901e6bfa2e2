"""The limiter's Redis calls travel together: one pipeline in flight at a time, and a
settle whose client has its answer waits briefly to share the next admission's round
trip (so one request at a time costs one round trip, not two)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.limits import Limiter
from gateway.limits.redis_backend import SETTLE_WAITS_S
from gateway.limits.redis_batch import ScriptBatcher
from tests.limits.conftest import LimiterFactory, key


def count_pipelines(limiter: Limiter, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the pipelines sent from now on; also checks one is in flight at a time."""
    batcher: ScriptBatcher = limiter._redis._batch  # type: ignore[union-attr]
    execute = batcher._execute
    sizes: list[int] = []
    in_flight = 0

    async def counted(batch: list[Any]) -> list[Any]:
        nonlocal in_flight
        in_flight += 1
        assert in_flight == 1, "two pipelines in flight at once"
        sizes.append(len(batch))
        try:
            return await execute(batch)
        finally:
            in_flight -= 1

    monkeypatch.setattr(batcher, "_execute", counted)
    return sizes


async def test_one_request_at_a_time_costs_one_round_trip(
    make_limiter: LimiterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = await make_limiter("redis")
    record = key(rpm=1000, tpm=100_000, max_parallel=1)
    sizes = count_pipelines(limiter, monkeypatch)
    first = await limiter.admit(record, "first", 100)
    settled = asyncio.create_task(limiter.settle(first, 40, answered=True))
    await asyncio.sleep(0)  # queued, waiting for company
    second = await limiter.admit(record, "second", 100)  # max_parallel=1: the slot is free
    await settled
    assert sizes == [1, 2]  # the second admission carried the first settle
    # Nothing comes after the last one: it goes alone, soon.
    started = time.perf_counter()
    await limiter.settle(second, 40, answered=True)
    assert time.perf_counter() - started < SETTLE_WAITS_S + 0.5
    assert sizes == [1, 2, 1]


async def test_a_settle_before_the_answer_goes_at_once(
    make_limiter: LimiterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = await make_limiter("redis")
    record = key(max_parallel=1)
    sizes = count_pipelines(limiter, monkeypatch)
    admission = await limiter.admit(record, "r", 0)
    settled = asyncio.create_task(limiter.settle(admission, 0))
    await asyncio.sleep(0.001)
    assert sizes == [1, 1] and settled.done()
    await settled


async def test_calls_queued_behind_a_pipeline_go_in_the_next_one(
    make_limiter: LimiterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = await make_limiter("redis")
    record = key(rpm=10_000)
    sizes = count_pipelines(limiter, monkeypatch)
    first = asyncio.create_task(limiter.admit(record, "r0", 0))
    await asyncio.sleep(0)  # the first pipeline is out
    rest = [asyncio.create_task(limiter.admit(record, f"r{i}", 0)) for i in range(1, 51)]
    await asyncio.gather(first, *rest)
    assert sizes[0] == 1 and sum(sizes) == 51 and len(sizes) <= 3


async def test_closing_sends_a_settle_still_waiting(
    make_limiter: LimiterFactory, redis_client: Redis, prefix: str
) -> None:
    limiter = await make_limiter("redis")
    record = key(max_parallel=1)
    admission = await limiter.admit(record, "r", 0)
    settled = asyncio.create_task(limiter.settle(admission, 0, answered=True))
    await asyncio.sleep(0)
    await limiter.close()
    await settled
    assert await redis_client.exists(f"{prefix}{{{record.id}}}:s") == 0  # the slot is free
