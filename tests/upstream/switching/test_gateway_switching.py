"""Two models in one engine group, through a real gateway, against fake engines that speak
vLLM's sleep API and enforce "only one awake" (tests/fakes/sleeping_engine.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine
from tests.fakes.sleeping_engine import Device, SleepingEngine, awake_and_asleep

CHAT = "/v1/chat/completions"
WAIT_HEADER = "x-gateway-switch-wait-ms"


def ask(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.fixture
async def device() -> AsyncIterator[Device]:
    yield Device()


@pytest.fixture
async def pair(device: Device) -> AsyncIterator[tuple[SleepingEngine, SleepingEngine]]:
    async with awake_and_asleep(device) as engines:
        yield engines


async def group_gateway(
    factory: GatewayFactory, engines: tuple[SleepingEngine, ...], **group: Any
) -> RunningGateway:
    level = group.pop("level", 1)
    config = {
        "name": "gpu0",
        "min_residency_s": 0,
        "drain_timeout_s": 5,
        "retry_after_s": 1,
        **group,
        "engines": [{"url": e.url, "model": e.model, "sleep_level": level} for e in engines],
    }
    return await factory(engine_groups=[config])


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_alternating_requests_all_succeed_and_the_wait_is_visible(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    gateway = await group_gateway(gateway_factory, pair)
    waits: list[int] = []
    async with gateway.client() as client:
        for i in range(6):
            model = (first, second)[i % 2].model
            response = await client.post(CHAT, json=ask(model))
            assert response.status_code == 200, response.text
            assert response.json()["model"] == model
            waits.append(int(response.headers[WAIT_HEADER]))
        metrics = (await client.get("/metrics")).text
    # Every request after the first waited for a switch (0.3 s of waking, at least).
    assert waits[0] < 100 and all(w >= 300 for w in waits[1:]), waits
    assert first.wakes == 2 and second.wakes == 3
    assert metric(metrics, "gateway_engine_switches_total", op="wake", result="ok") == 5
    assert metric(metrics, "gateway_engine_switches_total", op="sleep", result="ok") == 5
    assert metric(metrics, "gateway_engine_switch_duration_seconds_count", op="wake") == 5
    assert metric(metrics, "gateway_engine_switch_wait_seconds_count") == 5
    assert metric(metrics, "gateway_engine_switch_wait_seconds_sum") >= 1.5
    assert metric(metrics, "gateway_engine_awake", model=second.model) == 1
    assert metric(metrics, "gateway_engine_awake", model=first.model) == 0


async def test_concurrent_mixed_requests_are_batched_per_model(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    gateway = await group_gateway(gateway_factory, pair, min_residency_s=0.5)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        models = [first.model, second.model] * 8
        responses = await asyncio.gather(*(client.post(CHAT, json=ask(m)) for m in models))
    assert [r.status_code for r in responses] == [200] * 16
    assert [r.json()["model"] for r in responses] == models
    # Eight requests for each model, yet one wake each: they waited together.
    assert second.wakes == 1 and first.wakes <= 1


async def test_a_running_stream_finishes_before_its_engine_sleeps(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    first.behaviour.chunks, first.behaviour.chunk_delay = 10, 0.1
    gateway = await group_gateway(gateway_factory, pair)
    async with gateway.client() as client:
        async with client.stream("POST", CHAT, json=ask(first.model, stream=True)) as stream:
            assert stream.status_code == 200
            other = asyncio.create_task(client.post(CHAT, json=ask(second.model)))
            body = b"".join([chunk async for chunk in stream.aiter_bytes()])
        assert body.endswith(b"data: [DONE]\n\n") and body.count(b"tok") == 10
        response = await other
    assert response.status_code == 200
    assert int(response.headers[WAIT_HEADER]) >= 300
    assert first.sleeps == [1] and first.seen.aborted == []


async def test_a_full_queue_is_refused_with_retry_after(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    first.behaviour.chunks, first.behaviour.chunk_delay = 8, 0.1
    gateway = await group_gateway(gateway_factory, pair, queue_max=2)
    async with gateway.client() as client:
        async with client.stream("POST", CHAT, json=ask(first.model, stream=True)) as stream:
            waiting = [
                asyncio.create_task(client.post(CHAT, json=ask(second.model))) for _ in range(2)
            ]
            await asyncio.sleep(0.2)  # both are queued behind the stream
            refused = await client.post(CHAT, json=ask(second.model))
            await stream.aread()
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert error["code"] == "model_queue_full" and second.model in error["message"]
        assert refused.headers["retry-after"] == "1"
        assert [r.status_code for r in await asyncio.gather(*waiting)] == [200, 200]


async def test_a_failed_wake_is_a_clear_503_and_recovers(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    second.fail_wake = True
    gateway = await group_gateway(gateway_factory, pair)
    async with gateway.client() as client:
        failed = await client.post(CHAT, json=ask(second.model))
        assert failed.status_code == 503
        assert failed.json()["error"]["code"] == "engine_wake_failed"
        assert "retry-after" in failed.headers
        # Meanwhile the other model still works (it is woken again).
        assert (await client.post(CHAT, json=ask(first.model))).status_code == 200
        second.fail_wake = False
        await asyncio.sleep(1.1)  # retry_after_s
        recovered = await client.post(CHAT, json=ask(second.model))
        assert recovered.status_code == 200, recovered.text
        metrics = (await client.get("/metrics")).text
    assert metric(metrics, "gateway_engine_switches_total", op="wake", result="failed") == 1


async def test_models_are_listed_asleep_or_awake(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    gateway = await group_gateway(gateway_factory, pair)
    async with gateway.client() as client:
        listed = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
        assert listed[first.model]["status"] == "awake"
        assert listed[second.model]["status"] == "asleep"
        task = asyncio.create_task(client.post(CHAT, json=ask(second.model)))
        await asyncio.sleep(0.2)  # the fake takes 0.3 s to wake
        one = (await client.get(f"/v1/models/{second.model}")).json()
        assert one["status"] == "waking"
        assert (await task).status_code == 200
        listed = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
    assert listed[first.model]["status"] == "asleep"
    assert listed[second.model]["status"] == "awake"


async def test_level_two_sleep_reloads_the_weights_on_wake(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    gateway = await group_gateway(gateway_factory, pair, level=2)
    async with gateway.client() as client:
        for model in (second.model, first.model, second.model):
            response = await client.post(CHAT, json=ask(model))
            assert response.status_code == 200, response.text
    assert first.sleeps == [2, 2] and second.sleeps == [2]


async def test_a_client_that_leaves_while_waiting_leaves_the_queue(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    first.behaviour.chunks, first.behaviour.chunk_delay = 6, 0.1
    gateway = await group_gateway(gateway_factory, pair)
    async with gateway.client() as client:
        async with client.stream("POST", CHAT, json=ask(first.model, stream=True)) as stream:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(CHAT, json=ask(second.model), timeout=0.2)
            await asyncio.sleep(0.1)
            metrics = (await client.get("/metrics")).text
            assert metric(metrics, "gateway_engine_queue_depth", model=second.model) == 0
            await stream.aread()
        # Nobody waits for b any more: a was not put to sleep for nothing.
        await asyncio.sleep(0.2)
        assert first.sleeps == [] and second.wakes == 0
        assert (await client.post(CHAT, json=ask(first.model))).status_code == 200


async def test_engines_outside_the_group_are_untouched(
    gateway_factory: GatewayFactory,
    pair: tuple[SleepingEngine, SleepingEngine],
    engine: FakeEngine,
) -> None:
    gateway = await gateway_factory(
        upstreams=[engine.url],
        engine_groups=[
            {
                "name": "gpu0",
                "min_residency_s": 0,
                "engines": [{"url": e.url, "model": e.model} for e in pair],
            }
        ],
    )
    async with gateway.client() as client:
        response = await client.post(CHAT, json=ask(engine.model))
        listed = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
    assert response.status_code == 200 and WAIT_HEADER not in response.headers
    assert "status" not in listed[engine.model]


async def test_time_to_first_token_includes_the_wait(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    _, second = pair
    gateway = await group_gateway(gateway_factory, pair)
    async with gateway.client() as client:
        async with client.stream("POST", CHAT, json=ask(second.model, stream=True)) as stream:
            waited = int(stream.headers[WAIT_HEADER])
            await stream.aread()
        metrics = (await client.get("/metrics")).text
    ttft = metric(metrics, "gateway_time_to_first_token_seconds_sum", model=second.model)
    assert waited >= 300 and ttft >= waited / 1000


async def test_a_drain_past_its_timeout_refuses_the_waiter_and_cuts_nothing(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    first.behaviour.chunks, first.behaviour.chunk_delay = 10, 0.1
    gateway = await group_gateway(gateway_factory, pair, drain_timeout_s=0.3)
    streamed = ask(first.model, stream=True)
    async with gateway.client() as client, client.stream("POST", CHAT, json=streamed) as stream:
        refused = await client.post(CHAT, json=ask(second.model))
        body = await stream.aread()
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "engine_busy"
    assert int(refused.headers["retry-after"]) >= 1
    assert body.endswith(b"data: [DONE]\n\n") and body.count(b"tok") == 10
    assert first.sleeps == [] and second.wakes == 0


async def test_a_woken_engine_keeps_the_device_for_its_minimum_residency(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    gateway = await group_gateway(gateway_factory, pair, min_residency_s=1.0)
    async with gateway.client() as client:
        assert (await client.post(CHAT, json=ask(second.model))).status_code == 200
        back = await client.post(CHAT, json=ask(first.model))
    assert back.status_code == 200
    # b woke just now: a waits for the rest of b's second, then its own wake.
    assert int(back.headers[WAIT_HEADER]) >= 1000 + 300 - 50
