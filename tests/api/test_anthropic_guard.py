"""Anthropic Messages under the gateway's keys, limits and metering, and its errors in
Anthropic's shape and statuses (the SDK's exception classes prove the statuses)."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from tests.admin import create_key
from tests.api.test_anthropic import MESSAGES
from tests.api.test_metering import wait_rows
from tests.conftest import Client, GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine, free_port


class Body(TypedDict):
    """The keyword arguments of a plain `messages.create` (and the JSON body it posts)."""

    model: str
    max_tokens: int
    messages: list[MessageParam]


BODY: Body = {"model": "fake-model", "max_tokens": 64, "messages": MESSAGES}


def assert_anthropic_error(response: httpx.Response, status: int, type_: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == type_, body
    assert set(body) == {"type", "error"}
    return str(body["error"]["message"])


async def test_keys_from_x_api_key_or_bearer_and_401(
    claude: Client, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = (await create_key(gw)).secret
    assert (await claude(gw, api_key=key).messages.create(**BODY)).content
    # ANTHROPIC_AUTH_TOKEN (Claude Code) sends the key as a bearer token.
    bearer = claude(gw, api_key=None, auth_token=key)
    assert (await bearer.messages.count_tokens(model="fake-model", messages=MESSAGES)).input_tokens
    with pytest.raises(anthropic.AuthenticationError) as wrong:
        await claude(gw, api_key="sk-gw-wrong").messages.create(**BODY)
    assert wrong.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    async with gw.client() as client:
        missing = await client.post("/v1/messages", json=BODY)
    assert "API key" in assert_anthropic_error(missing, 401, "authentication_error")


async def test_forbidden_and_unknown_models(
    claude: Client, engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    narrow = (await create_key(gw, models=["other-model"])).secret
    wide = (await create_key(gw)).secret
    with pytest.raises(anthropic.PermissionDeniedError) as forbidden:
        await claude(gw, api_key=narrow).messages.create(**BODY)
    assert forbidden.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await claude(gw, api_key=wide).messages.create(
            model="claude-opus-4", max_tokens=64, messages=MESSAGES
        )
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert engine.seen.bodies == []


async def test_rate_limit_is_429_with_retry_after(
    claude: Client, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = (await create_key(gw, rpm=1)).secret
    await claude(gw, api_key=key).messages.create(**BODY)
    with pytest.raises(anthropic.RateLimitError) as limited:
        await claude(gw, api_key=key).messages.create(**BODY)
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60


async def test_max_tokens_is_reserved_against_tpm(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = (await create_key(gw, tpm=1000)).secret
    async with gw.client(headers={"x-api-key": key}) as client:
        too_big = await client.post("/v1/messages", json={**BODY, "max_tokens": 5000})
        fits = await client.post("/v1/messages", json={**BODY, "max_tokens": 100})
    assert_anthropic_error(too_big, 429, "rate_limit_error")
    assert fits.status_code == 200
    assert len(engine.seen.bodies) == 1


async def test_bad_requests_are_400_invalid_request_error(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        no_max = await client.post(
            "/v1/messages", json={"model": "fake-model", "messages": MESSAGES}
        )
        not_json = await client.post(
            "/v1/messages", content=b"{", headers={"content-type": "application/json"}
        )
        no_model = await client.post("/v1/messages/count_tokens", json={"messages": MESSAGES})
    assert "max_tokens" in assert_anthropic_error(no_max, 400, "invalid_request_error")
    assert_anthropic_error(not_json, 400, "invalid_request_error")
    assert "model" in assert_anthropic_error(no_model, 400, "invalid_request_error")


async def test_body_over_the_cap_is_413_request_too_large(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url], max_body_bytes=1000)
    big = {**BODY, "messages": [{"role": "user", "content": "x" * 2000}]}
    async with gw.client() as client:
        response = await client.post("/v1/messages", json=big)
    assert "GATEWAY_MAX_BODY_BYTES" in assert_anthropic_error(response, 413, "request_too_large")


async def test_no_engine_is_529_overloaded(claude: Client, gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(upstreams=[f"http://127.0.0.1:{free_port()}"])
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await claude(gw).messages.create(**BODY)
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("status", "body", "type_"),
    [
        # vLLM: Anthropic's outer shape with its own type names.
        (
            400,
            {"type": "error", "error": {"type": "BadRequestError", "message": "bad"}},
            "invalid_request_error",
        ),
        (
            404,
            {"type": "error", "error": {"type": "NotFoundError", "message": "bad"}},
            "not_found_error",
        ),
        # vLLM's request validation answers in the OpenAI shape, even here.
        (
            400,
            {"error": {"message": "bad", "type": "BadRequestError", "code": 400}},
            "invalid_request_error",
        ),
        (
            503,
            {"type": "error", "error": {"type": "ServiceUnavailable", "message": "bad"}},
            "overloaded_error",
        ),
        (500, {"detail": "bad"}, "api_error"),
    ],
)
async def test_engine_errors_become_anthropic_errors(
    gateway: RunningGateway, engine: FakeEngine, status: int, body: dict[str, Any], type_: str
) -> None:
    engine.behaviour.fail_status, engine.behaviour.fail_body = status, body
    async with gateway.client() as client:
        response = await client.post("/v1/messages", json=BODY)
    assert assert_anthropic_error(response, status, type_) == "bad"


async def test_engine_without_messages_route_is_404_not_found_error(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    engine.behaviour.unserved = {"/v1/messages"}  # a pooling model's engine
    async with gateway.client() as client:
        response = await client.post("/v1/messages", json=BODY)
    assert "does not serve /v1/messages" in assert_anthropic_error(response, 404, "not_found_error")


async def test_mid_stream_failure_is_an_anthropic_error_event(
    claude: Client, gateway: RunningGateway, engine: FakeEngine
) -> None:
    engine.behaviour.chunks, engine.behaviour.die_after_chunks = 10, 2
    async with gateway.client() as client:
        response = await client.post("/v1/messages", json={**BODY, "stream": True})
    assert response.text.endswith(
        'event: error\ndata: {"type":"error","error":{"type":"api_error",'
        '"message":"The inference engine closed the stream early."}}\n\n'
    )
    with pytest.raises(anthropic.APIStatusError):
        async with claude(gateway).messages.stream(**BODY) as stream:
            async for _ in stream:
                pass


async def test_usage_rows_from_body_stream_and_count_tokens(
    claude: Client, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = (await create_key(gw, tpm=100_000)).secret
    client = claude(gw, api_key=key)
    await client.messages.create(**BODY)
    async with client.messages.stream(**BODY) as stream:
        await stream.get_final_message()
    await client.messages.count_tokens(model="fake-model", messages=MESSAGES)
    rows = await wait_rows(gw, database_url, 3)
    # (key, status, prompt, completion, streamed, cancelled)
    assert [r[1:] for r in rows] == [
        (200, 7, 3, False, False),
        (200, 7, 3, True, False),
        (200, 0, 0, False, False),  # counting runs no model: a request, no tokens
    ]
    sample = gw.state.metrics.registry.get_sample_value(
        "gateway_tokens_total", {"model": "fake-model", "kind": "completion"}
    )
    assert sample == 6


async def test_client_leaving_aborts_the_engine_and_pays_what_it_got(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = (await create_key(gw, tpm=100_000)).secret
    engine.behaviour.chunks, engine.behaviour.chunk_delay = 200, 0.02
    deltas = 0
    async with (
        gw.client(headers={"x-api-key": key, "x-request-id": "leaver"}) as client,
        client.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as response,
    ):
        async for line in response.aiter_lines():
            deltas += line == "event: content_block_delta"
            if deltas == 5:
                break
    for _ in range(100):
        if "leaver" in engine.seen.aborted:
            break
        await asyncio.sleep(0.05)
    assert engine.seen.aborted == ["leaver"]
    rows = await wait_rows(gw, database_url, 1)
    _, status, prompt, completion, streamed, cancelled = rows[0]
    # The prompt as message_start reported it; the answer's deltas relayed so far.
    assert (status, prompt, streamed, cancelled) == (200, 7, True, True)
    assert 5 <= completion < 200
