"""Bad input and failing engines give OpenAI-shaped errors with the right status."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.admin import ADMIN_KEY, admin_headers
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine, free_port

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]


def assert_openai_error(
    response: httpx.Response, status: int, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": 3, "messages": MESSAGES}, "model"),
        ({"model": "fake-model"}, "messages"),
        ({"model": "fake-model", "messages": "hi"}, "messages"),
        ({"model": "fake-model", "messages": [{"content": "x"}]}, "messages[0]"),
        ({"model": "fake-model", "messages": MESSAGES, "stream": "yes"}, "stream"),
        ({"model": "fake-model", "messages": MESSAGES, "max_tokens": -1}, "max_tokens"),
        (
            {"model": "fake-model", "messages": MESSAGES, "max_completion_tokens": "9"},
            "max_completion_tokens",
        ),
        (
            {"model": "fake-model", "messages": MESSAGES, "stream": True, "stream_options": 1},
            "stream_options",
        ),
    ],
)
async def test_wrong_fields_are_400_with_param(
    gateway: RunningGateway, engine: FakeEngine, body: dict[str, Any], param: str
) -> None:
    async with gateway.client() as client:
        response = await client.post(CHAT, json=body)
    error = assert_openai_error(response, 400, param)
    assert error["type"] == "invalid_request_error"
    assert response.headers["x-should-retry"] == "false"
    assert engine.seen.bodies == []  # nothing went upstream


async def test_invalid_json_is_400(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.post(
            CHAT, content=b'{"model": ', headers={"content-type": "application/json"}
        )
    assert "not valid JSON" in assert_openai_error(response, 400)["message"]


async def test_non_object_json_is_400(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.post(CHAT, json=[1, 2])
    assert_openai_error(response, 400)


async def test_non_json_content_type_is_415(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.post(
            CHAT, content=b"model=x", headers={"content-type": "application/x-www-form-urlencoded"}
        )
    error = assert_openai_error(response, 415)
    assert "application/json" in error["message"]


async def test_body_over_the_limit_is_413(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url], max_body_bytes=1024)
    big = {"model": "fake-model", "messages": [{"role": "user", "content": "x" * 4096}]}
    async with gw.client() as client:
        response = await client.post(CHAT, json=big)
        small = await client.post(CHAT, json={"model": "fake-model", "messages": MESSAGES})
    assert "1024" in assert_openai_error(response, 413)["message"]
    assert small.status_code == 200


async def test_unknown_model_is_404_model_not_found(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.post(CHAT, json={"model": "nope", "messages": MESSAGES})
    assert assert_openai_error(response, 404, "model")["code"] == "model_not_found"


async def test_unknown_route_is_openai_shaped_404(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.get("/v1/nothing-here")
    assert assert_openai_error(response, 404)["code"] == "unknown_url"


async def test_wrong_method_is_an_openai_error(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.get(CHAT)
    assert_openai_error(response, 400)


async def test_upstream_error_keeps_status_and_is_normalised(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    # Older vLLM: a flat body with the HTTP status as an int `code`.
    engine.behaviour.fail_status = 400
    engine.behaviour.fail_body = {
        "object": "error",
        "message": "This model's maximum context length is 2048 tokens. However, you "
        "requested 5000 tokens.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    async with gateway.client() as client:
        response = await client.post(CHAT, json={"model": "fake-model", "messages": MESSAGES})
    error = assert_openai_error(response, 400)
    assert error["code"] == "context_length_exceeded"
    assert error["message"].startswith("This model's maximum context length is")
    assert response.headers["x-should-retry"] == "false"


async def test_upstream_5xx_keeps_its_status(gateway: RunningGateway, engine: FakeEngine) -> None:
    engine.behaviour.fail_status = 500
    engine.behaviour.fail_body = {"error": {"message": "engine crashed"}}
    async with gateway.client() as client:
        response = await client.post(CHAT, json={"model": "fake-model", "messages": MESSAGES})
    error = assert_openai_error(response, 500)
    assert error["type"] == "server_error"
    assert "x-should-retry" not in response.headers  # let the SDK retry a 5xx


async def test_unreachable_upstream_is_503(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url], admin_key=ADMIN_KEY)
    await engine.stop()
    # The admin key: /v1 needs it (no database), and /readyz shows it the engines' state.
    async with gw.client(headers=admin_headers()) as client:
        response = await client.post(CHAT, json={"model": "fake-model", "messages": MESSAGES})
        assert assert_openai_error(response, 503)["code"] == "upstream_unavailable"
        await asyncio.sleep(0.5)  # the health check has noticed by now
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["upstreams"][0]["healthy"] is False


async def test_no_engine_answered_yet_is_503_not_404(gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(upstreams=[f"http://127.0.0.1:{free_port()}"])
    async with gw.client() as client:
        response = await client.post(CHAT, json={"model": "fake-model", "messages": MESSAGES})
    assert "still be loading" in assert_openai_error(response, 503)["message"]


async def test_read_timeout_is_504(engine: FakeEngine, gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(upstreams=[engine.url], read_timeout_s=0.2)
    engine.behaviour.first_delay = 1.0
    async with gw.client() as client:
        response = await client.post(CHAT, json={"model": "fake-model", "messages": MESSAGES})
    assert assert_openai_error(response, 504)["code"] == "upstream_timeout"


async def test_failover_to_the_next_healthy_engine(gateway_factory: GatewayFactory) -> None:
    first, second = FakeEngine(), FakeEngine()
    await first.start()
    await second.start()
    try:
        gw = await gateway_factory(upstreams=[first.url, second.url], health_interval_s=60)
        await first.stop()  # dies between health checks: still marked healthy
        async with gw.client() as client:
            response = await client.post(CHAT, json={"model": "fake-model", "messages": MESSAGES})
        assert response.status_code == 200
        assert len(second.seen.bodies) == 1
        states = {u.url: u.healthy for u in gw.state.engines.registry.upstreams}
        assert states == {first.url: False, second.url: True}
    finally:
        await second.stop()


async def test_fewest_in_flight_gets_the_request(gateway_factory: GatewayFactory) -> None:
    first, second = FakeEngine(), FakeEngine()
    await first.start()
    await second.start()
    try:
        for fake in (first, second):
            fake.behaviour.first_delay = 0.3
        gw = await gateway_factory(upstreams=[first.url, second.url])
        body = {"model": "fake-model", "messages": MESSAGES}
        async with gw.client() as client:
            results = await asyncio.gather(*(client.post(CHAT, json=body) for _ in range(6)))
        assert all(r.status_code == 200 for r in results)
        assert len(first.seen.bodies) == 3 and len(second.seen.bodies) == 3
    finally:
        await first.stop()
        await second.stop()


async def test_secrets_never_reach_logs(
    engine: FakeEngine, gateway_factory: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    gw = await gateway_factory(upstreams=[engine.url], upstream_api_key="engine-secret-xyz")
    async with gw.client() as client:
        await client.post(
            CHAT,
            json={"model": "fake-model", "messages": MESSAGES},
            headers={"authorization": "Bearer client-secret-abc"},
        )
    assert "engine-secret-xyz" not in caplog.text
    assert "client-secret-abc" not in caplog.text
    assert "engine-secret-xyz" not in repr(gw.state.settings)
