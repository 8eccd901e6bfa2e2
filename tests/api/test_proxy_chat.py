"""Chat and completions through the gateway against the fake engine, with the openai SDK."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory, RunningGateway, SdkFactory
from tests.fakes.engine import FakeEngine

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def test_non_streamed_chat_is_relayed_as_is(
    sdk: SdkFactory, gateway: RunningGateway, engine: FakeEngine
) -> None:
    reply = await sdk(gateway).chat.completions.create(model="fake-model", messages=MESSAGES)
    assert reply.choices[0].message.content == "tok0 tok1 tok2 "
    assert reply.usage is not None and reply.usage.prompt_tokens == 7
    assert "stream_options" not in engine.seen.bodies[0]


async def test_stream_without_usage_strips_the_usage_chunk(
    sdk: SdkFactory, gateway: RunningGateway, engine: FakeEngine
) -> None:
    stream = await sdk(gateway).chat.completions.create(
        model="fake-model", messages=MESSAGES, stream=True
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "tok0 tok1 tok2 "
    assert all(c.usage is None for c in chunks)
    # The engine was asked for usage anyway, so the gateway could meter the stream.
    assert engine.seen.bodies[0]["stream_options"] == {"include_usage": True}
    metrics = (await gateway.client().get("/metrics")).text
    assert 'gateway_tokens_total{kind="completion",model="fake-model"} 3.0' in metrics
    assert 'gateway_tokens_total{kind="prompt",model="fake-model"} 7.0' in metrics


async def test_stream_with_usage_keeps_the_usage_chunk(
    sdk: SdkFactory, gateway: RunningGateway
) -> None:
    stream = await sdk(gateway).chat.completions.create(
        model="fake-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


async def test_raw_sse_bytes_end_with_done(gateway: RunningGateway) -> None:
    body = {"model": "fake-model", "messages": MESSAGES, "stream": True}
    async with gateway.client() as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.text.endswith("data: [DONE]\n\n")
    assert '"usage"' not in response.text


async def test_stream_options_without_stream_is_dropped(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    body = {"model": "fake-model", "messages": MESSAGES, "stream_options": {"include_usage": True}}
    async with gateway.client() as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert "stream_options" not in engine.seen.bodies[0]


async def test_legacy_guided_fields_become_structured_outputs(
    sdk: SdkFactory, gateway: RunningGateway, engine: FakeEngine
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    await sdk(gateway).chat.completions.create(
        model="fake-model",
        messages=MESSAGES,
        extra_body={"guided_json": schema, "guided_decoding_backend": "xgrammar"},
    )
    sent = engine.seen.bodies[0]
    assert sent["structured_outputs"] == {"json": schema}
    assert "guided_json" not in sent and "guided_decoding_backend" not in sent


async def test_legacy_completions_stream(
    sdk: SdkFactory, gateway: RunningGateway, engine: FakeEngine
) -> None:
    stream = await sdk(gateway).completions.create(model="fake-model", prompt="x", stream=True)
    text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert text == "tok0 tok1 tok2 "
    assert engine.seen.bodies[0]["stream_options"] == {"include_usage": True}


async def test_alias_is_resolved_before_the_engine(
    sdk: SdkFactory, engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url], model_aliases={"gpt-4o-mini": "fake-model"})
    await sdk(gw).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert engine.seen.bodies[0]["model"] == "fake-model"
    listed = [m.id async for m in sdk(gw).models.list()]
    assert set(listed) == {"fake-model", "gpt-4o-mini"}


async def test_request_id_flows_to_the_engine_and_back(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    body = {"model": "fake-model", "messages": MESSAGES}
    async with gateway.client() as client:
        response = await client.post(
            "/v1/chat/completions", json=body, headers={"x-request-id": "abc-123"}
        )
        generated = await client.post("/v1/chat/completions", json=body)
    assert response.headers["x-request-id"] == "abc-123"
    assert engine.seen.headers[0]["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    # The client's credentials never travel to the engine.
    assert "authorization" not in {k.lower() for k in engine.seen.headers[0]}


async def test_upstream_api_key_is_sent_to_the_engine(
    sdk: SdkFactory, engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url], upstream_api_key="engine-secret")
    await sdk(gw).chat.completions.create(model="fake-model", messages=MESSAGES)
    assert engine.seen.headers[0]["authorization"] == "Bearer engine-secret"


async def test_client_disconnect_aborts_the_engine_request(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    engine.behaviour.chunks = 200
    engine.behaviour.chunk_delay = 0.02
    body = {"model": "fake-model", "messages": MESSAGES, "stream": True}
    async with (
        gateway.client() as client,
        client.stream(
            "POST", "/v1/chat/completions", json=body, headers={"x-request-id": "leaver"}
        ) as response,
    ):
        async for _ in response.aiter_bytes():
            break  # one chunk, then hang up
    for _ in range(100):
        if engine.seen.aborted:
            break
        await asyncio.sleep(0.02)
    assert engine.seen.aborted == ["leaver"]
    assert engine.seen.finished == []
    # 200 chunks at 20 ms would take 4 s: the engine stopped long before that.
    for _ in range(50):
        if gateway.state.engines.registry.upstreams[0].in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert gateway.state.engines.registry.upstreams[0].in_flight == 0
    metrics = (await gateway.client().get("/metrics")).text
    assert 'gateway_client_disconnects_total{route="/v1/chat/completions"} 1.0' in metrics


async def test_stream_chunks_arrive_as_generated(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    engine.behaviour.chunks = 3
    engine.behaviour.chunk_delay = 0.3
    body = {"model": "fake-model", "messages": MESSAGES, "stream": True}
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    async with (
        gateway.client() as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        async for chunk in response.aiter_raw():
            if b"tok" in chunk:
                arrivals.append(loop.time())
    # Not buffered: chunks came roughly 0.3 s apart, not all at the end.
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] > 0.2 and arrivals[2] - arrivals[1] > 0.2


async def test_mid_stream_failure_is_an_sse_error_event(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    engine.behaviour.chunks = 5
    engine.behaviour.die_after_chunks = 2
    body = {"model": "fake-model", "messages": MESSAGES, "stream": True}
    async with gateway.client() as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    events = [e for e in response.text.split("\n\n") if e]
    assert events[-1].startswith("data: ")
    last = orjson.loads(events[-1][len("data: ") :])
    assert last["error"]["code"] == "upstream_disconnected"
    assert "[DONE]" not in response.text


async def test_sdk_raises_on_mid_stream_error(
    sdk: SdkFactory, gateway: RunningGateway, engine: FakeEngine
) -> None:
    engine.behaviour.die_after_chunks = 1
    stream = await sdk(gateway).chat.completions.create(
        model="fake-model", messages=MESSAGES, stream=True
    )
    with pytest.raises(Exception, match="closed the stream early"):
        async for _ in stream:
            pass
