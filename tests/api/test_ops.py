"""Health, readiness and metrics endpoints."""

from __future__ import annotations

import asyncio

from tests.admin import ADMIN_KEY, admin_headers
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine


async def test_healthz_and_readyz(engine: FakeEngine, gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(upstreams=[engine.url], admin_key=ADMIN_KEY)
    admin = admin_headers()
    async with gw.client() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz", headers=admin)
        assert ready.status_code == 200
        assert ready.json()["upstreams"][0]["models"] == ["fake-model"]
        engine.behaviour.healthy = False
        await asyncio.sleep(0.5)
        not_ready = await client.get("/readyz", headers=admin)
        assert not_ready.status_code == 503
        assert "503" in not_ready.json()["upstreams"][0]["error"]
        engine.behaviour.healthy = True
        await asyncio.sleep(0.5)
        assert (await client.get("/readyz")).status_code == 200


async def test_readyz_shows_strangers_only_whether_it_is_ready(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url], admin_key=ADMIN_KEY)
    async with gw.client() as client:
        for headers in ({}, {"authorization": "Bearer not-the-admin-key"}, {"x-api-key": "x"}):
            public = await client.get("/readyz", headers=headers)
            assert (public.status_code, public.json()) == (200, {"status": "ready"})
        engine.behaviour.healthy = False
        await asyncio.sleep(0.5)
        public = await client.get("/readyz")
        assert (public.status_code, public.json()) == (503, {"status": "not_ready"})
        assert engine.url not in public.text and "fake-model" not in public.text


async def test_metrics_expose_the_documented_series(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        await client.post(
            "/v1/chat/completions",
            json={
                "model": "fake-model",
                "messages": [{"role": "user", "content": "x"}],
                "stream": True,
            },
        )
        await client.get("/v1/models/nope")
        text = (await client.get("/metrics")).text
    assert (
        'gateway_requests_total{model="fake-model",route="/v1/chat/completions",status="200"}'
        in text
    )
    assert 'gateway_requests_total{model="",route="/v1/models/{model}",status="404"}' in text
    assert "gateway_time_to_first_token_seconds_count" in text
    assert "gateway_request_duration_seconds_bucket" in text
    assert 'gateway_upstream_healthy{upstream="' in text
    assert 'gateway_requests_in_flight{route="/v1/chat/completions"} 0.0' in text


async def test_in_flight_gauge_counts_open_streams(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    engine.behaviour.chunks = 20
    engine.behaviour.chunk_delay = 0.05
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}], "stream": True}
    async with gateway.client() as client:
        stream = asyncio.create_task(client.post("/v1/chat/completions", json=body))
        await asyncio.sleep(0.3)
        during = (await client.get("/metrics")).text
        await stream
        after = (await client.get("/metrics")).text
    assert 'gateway_requests_in_flight{route="/v1/chat/completions"} 1.0' in during
    assert 'gateway_requests_in_flight{route="/v1/chat/completions"} 0.0' in after


async def test_cors_preflight_allows_sdk_headers(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.options(
            "/v1/chat/completions",
            headers={
                "origin": "http://localhost:3000",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type,x-stainless-os",
            },
        )
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "x-stainless-os" in allowed
