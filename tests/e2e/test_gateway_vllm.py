"""The unmodified openai SDK against real vLLM CPU engines, through the gateway."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from gateway.local.engine import Engine
from tests.admin import ADMIN_KEY, create_key
from tests.api.test_keys_limits_usage import usage_rows
from tests.conftest import GatewayFactory, RunningGateway, SdkFactory


@pytest.fixture
async def gw(
    chat_engine: Engine, embedding_engine: Engine, gateway_factory: GatewayFactory
) -> RunningGateway:
    return await gateway_factory(
        upstreams=[chat_engine.base_url, embedding_engine.base_url],
        model_aliases={"gpt-4o-mini": chat_engine.model},
    )


ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Name one colour."}]


async def test_models_are_discovered_with_max_model_len(
    sdk: SdkFactory, gw: RunningGateway, chat_engine: Engine, embedding_engine: Engine
) -> None:
    models = {m.id: m async for m in sdk(gw).models.list()}
    assert {chat_engine.model, embedding_engine.model, "gpt-4o-mini"} <= set(models)
    assert (models[chat_engine.model].model_extra or {})["max_model_len"] == 2048


async def test_chat_non_streamed(sdk: SdkFactory, gw: RunningGateway, chat_engine: Engine) -> None:
    reply = await sdk(gw).chat.completions.create(
        model=chat_engine.model, messages=ASK, max_tokens=12, temperature=0
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0


async def test_chat_through_an_alias(
    sdk: SdkFactory, gw: RunningGateway, chat_engine: Engine
) -> None:
    reply = await sdk(gw).chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=5)
    assert reply.model == chat_engine.model


async def test_stream_without_usage_is_metered_but_not_shown(
    sdk: SdkFactory, gw: RunningGateway, chat_engine: Engine
) -> None:
    stream = await sdk(gw).chat.completions.create(
        model=chat_engine.model, messages=ASK, max_tokens=12, stream=True
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert all(c.usage is None for c in chunks)
    metrics = (await gw.client().get("/metrics")).text
    line = next(
        row
        for row in metrics.splitlines()
        if row.startswith("gateway_tokens_total") and 'kind="completion"' in row
    )
    assert float(line.split()[-1]) > 0


async def test_stream_with_usage(sdk: SdkFactory, gw: RunningGateway, chat_engine: Engine) -> None:
    stream = await sdk(gw).chat.completions.create(
        model=chat_engine.model,
        messages=ASK,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_legacy_completions(sdk: SdkFactory, gw: RunningGateway, chat_engine: Engine) -> None:
    reply = await sdk(gw).completions.create(
        model=chat_engine.model, prompt="The sky is", max_tokens=5
    )
    assert reply.choices[0].text
    stream = await sdk(gw).completions.create(
        model=chat_engine.model, prompt="The sky is", max_tokens=5, stream=True
    )
    assert "".join([c.choices[0].text async for c in stream if c.choices])


async def test_legacy_guided_choice_still_constrains_output(
    sdk: SdkFactory, gw: RunningGateway, chat_engine: Engine
) -> None:
    # vLLM >= 0.12 would ignore guided_choice; the gateway turns it into structured_outputs.
    reply = await sdk(gw).chat.completions.create(
        model=chat_engine.model,
        messages=[{"role": "user", "content": "Is water wet? Answer."}],
        max_tokens=12,
        extra_body={"guided_choice": ["absolutely", "never"]},
    )
    assert reply.choices[0].message.content in {"absolutely", "never"}


async def test_embeddings_float_and_base64(
    sdk: SdkFactory, gw: RunningGateway, embedding_engine: Engine
) -> None:
    client = sdk(gw)
    floats = await client.embeddings.create(
        model=embedding_engine.model, input=["a cat", "a dog"], encoding_format="float"
    )
    # The SDK's default asks for base64 and decodes it.
    decoded = await client.embeddings.create(model=embedding_engine.model, input=["a cat"])
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 384
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-3)


async def test_context_overflow_is_recognisable(
    sdk: SdkFactory, gw: RunningGateway, chat_engine: Engine
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk(gw).chat.completions.create(
            model=chat_engine.model,
            messages=[{"role": "user", "content": "word " * 3000}],
            max_tokens=10,
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error.get("code") == "context_length_exceeded", error
    assert str(error.get("message", "")).startswith("This model's maximum context length is")


async def _engine_running(engine_url: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(engine_url + "/metrics")).text
    for line in text.splitlines():
        if line.startswith("vllm:num_requests_running"):
            return float(line.split()[-1])
    raise AssertionError("vllm:num_requests_running not exported")


async def test_client_disconnect_aborts_generation_in_vllm(
    gw: RunningGateway, chat_engine: Engine
) -> None:
    body = {
        "model": chat_engine.model,
        "messages": [{"role": "user", "content": "Write a very long story."}],
        "max_tokens": 1500,
        "stream": True,
        "ignore_eos": True,
    }
    async with (
        gw.client() as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        async for chunk in response.aiter_bytes():
            if b"content" in chunk:
                break
        assert await _engine_running(chat_engine.base_url) == 1
    # 1500 tokens take far longer than this on the CPU: only an abort frees it so soon.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if await _engine_running(chat_engine.base_url) == 0:
            break
        await asyncio.sleep(0.2)
    assert await _engine_running(chat_engine.base_url) == 0


async def test_every_answer_of_n_and_of_a_prompt_batch_is_metered(
    chat_engine: Engine, gateway_factory: GatewayFactory, database_url: str
) -> None:
    # vLLM's own usage, as recorded: max_completion_tokens wins over max_tokens for chat
    # (vLLM's precedence), and n answers times the prompts of a batch are all counted.
    gw = await gateway_factory(
        upstreams=[chat_engine.base_url], database_url=database_url, admin_key=ADMIN_KEY
    )
    key = await create_key(gw, tpm=100_000)
    chat = {
        "model": chat_engine.model,
        "messages": ASK,
        "n": 2,
        "max_completion_tokens": 6,
        "max_tokens": 2,
        "ignore_eos": True,
        "stream": True,
    }
    batch = {
        "model": chat_engine.model,
        "prompt": ["Once upon a time", "The sky is"],
        "n": 2,
        "max_tokens": 3,
        "ignore_eos": True,
    }
    async with gw.client(headers=key.headers) as client:
        streamed = await client.post("/v1/chat/completions", json=chat)
        batched = await client.post("/v1/completions", json=batch)
    assert streamed.status_code == 200 and '"usage"' not in streamed.text  # stripped
    assert batched.json()["usage"]["completion_tokens"] == 12
    await gw.storage.usage.flush()
    rows = usage_rows(database_url)
    assert [(r[1], r[3]) for r in rows] == [(200, 12), (200, 12)]
    assert rows[1][2] == batched.json()["usage"]["prompt_tokens"]
