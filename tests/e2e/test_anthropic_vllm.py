"""The anthropic SDK and vLLM's other serving routes through the gateway, against real
vLLM CPU engines (SmolLM2-135M-Instruct, all-MiniLM-L6-v2 as a pooling model): keyed,
limited and metered. Routes no engine here serves (classify needs a classification
model, audio a speech-to-text one: none comes in a PyPI package) are the documented 404."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from gateway.local.engine import Engine
from tests.admin import ADMIN_KEY, bearer, create_key
from tests.api.test_metering import wait_rows
from tests.conftest import Client, GatewayFactory, RunningGateway

HELLO: list[MessageParam] = [{"role": "user", "content": "Name one colour."}]
QUERY = "What is the capital of France?"
DOCUMENTS = ["Bananas are yellow.", "Paris is the capital of France."]


@pytest.fixture
async def gw(
    chat_engine: Engine,
    embedding_engine: Engine,
    gateway_factory: GatewayFactory,
    database_url: str,
) -> RunningGateway:
    return await gateway_factory(
        upstreams=[chat_engine.base_url, embedding_engine.base_url],
        database_url=database_url,
        admin_key=ADMIN_KEY,
        model_aliases={"claude-*": chat_engine.model},
    )


async def test_anthropic_sdk_plain_stream_and_count_tokens_metered(
    claude: Client, gw: RunningGateway, database_url: str
) -> None:
    key = (await create_key(gw, tpm=100_000)).secret
    client = claude(gw, api_key=key)
    message = await client.messages.create(
        model="claude-haiku-4-5-20251001", max_tokens=12, messages=HELLO
    )
    assert message.type == "message" and message.content[0].type == "text"
    assert message.content[0].text
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 12
    async with client.messages.stream(
        model="claude-sonnet-5", max_tokens=12, messages=HELLO
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text and final.usage.output_tokens > 0
    counted = await client.messages.count_tokens(model="claude-sonnet-5", messages=HELLO)
    # The same prompt, counted by the engine's chat template both times.
    assert counted.input_tokens == message.usage.input_tokens == final.usage.input_tokens
    rows = await wait_rows(gw, database_url, 3)
    # (key, status, prompt, completion, streamed, cancelled): what vLLM reported.
    assert [r[1:] for r in rows] == [
        (200, message.usage.input_tokens, message.usage.output_tokens, False, False),
        (200, final.usage.input_tokens, final.usage.output_tokens, True, False),
        (200, 0, 0, False, False),
    ]


async def test_anthropic_limits_and_errors(
    claude: Client, gw: RunningGateway, embedding_engine: Engine
) -> None:
    small = claude(gw, api_key=(await create_key(gw, tpm=1000)).secret)
    with pytest.raises(anthropic.RateLimitError) as too_large:  # max_tokens alone is over
        await small.messages.create(model="claude-x", max_tokens=5000, messages=HELLO)
    assert "tpm" in str(too_large.value.body)
    assert (await small.messages.create(model="claude-x", max_tokens=5, messages=HELLO)).content
    slow = claude(gw, api_key=(await create_key(gw, rpm=1)).secret)
    await slow.messages.create(model="claude-x", max_tokens=5, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as limited:
        await slow.messages.create(model="claude-x", max_tokens=5, messages=HELLO)
    assert int(limited.value.response.headers["retry-after"]) >= 1
    # An engine that does not serve Messages (the embedding model's): Anthropic's 404.
    with pytest.raises(anthropic.NotFoundError) as missing:
        await small.messages.create(model=embedding_engine.model, max_tokens=5, messages=HELLO)
    assert "does not serve /v1/messages" in str(missing.value.body)
    # vLLM's own validation, in Anthropic's shape.
    with pytest.raises(anthropic.BadRequestError):
        await small.messages.create(
            model="claude-x",
            max_tokens=100,
            messages=HELLO,
            thinking={"type": "enabled", "budget_tokens": 2048},  # over max_tokens
        )


async def _engine_metric(engine_url: str, name: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(engine_url + "/metrics")).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


# Prompts whose answers run long. The Messages API has no `ignore_eos`, and greedy output
# differs between CPUs (one machine's answer to the first was "1, 2, 3, ..., 1000."): the
# test takes the first prompt that is still generating when its client leaves.
LONG_PROMPTS = [
    "Count from 1 to 1000, separated by commas.",
    "Write a very long story about a dragon who learns to sail.",
    "List two hundred animals, one per line, with a sentence about each.",
]


def body_of(max_tokens: int, prompt: str = LONG_PROMPTS[0]) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-5",
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": prompt}],
    }


async def _leave_a_long_stream(
    gw: RunningGateway, key: str, engine_url: str
) -> tuple[float, int, str]:
    """Leaves a stream after three deltas while vLLM still generates it; returns the
    engine's count of requests that finished by themselves before, how many streams were
    tried and the prompt of the one left."""
    for tried, prompt in enumerate(LONG_PROMPTS, 1):
        finished = await _engine_metric(engine_url, "vllm:request_success_total")
        deltas = 0
        async with (
            gw.client(headers={"x-api-key": key}) as client,
            client.stream(
                "POST", "/v1/messages", json={**body_of(1500, prompt), "stream": True}
            ) as response,
        ):
            async for line in response.aiter_lines():
                deltas += line == "event: content_block_delta"
                if deltas == 3:
                    break
            if await _engine_metric(engine_url, "vllm:num_requests_running") == 1:
                return finished, tried, prompt
        # That answer ended by itself within three deltas: its usage row is metered like
        # any other; try a longer one.
    raise AssertionError("no prompt kept SmolLM2 generating past three deltas")


async def test_anthropic_stream_left_by_its_client_is_aborted_in_vllm(
    gw: RunningGateway, chat_engine: Engine, database_url: str
) -> None:
    key = (await create_key(gw, tpm=100_000)).secret
    url = chat_engine.base_url
    async with gw.client(headers={"x-api-key": key}) as client:
        done = await client.post("/v1/messages", json={**body_of(2), "stream": False})
    assert done.status_code == 200
    # Requests that ended by finishing (stop, length), this one too; an aborted one is not.
    assert await _engine_metric(url, "vllm:request_success_total") >= 1
    finished, tried, prompt = await _leave_a_long_stream(gw, key, url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and await _engine_metric(url, "vllm:num_requests_running"):
        await asyncio.sleep(0.2)
    assert await _engine_metric(url, "vllm:num_requests_running") == 0
    assert await _engine_metric(url, "vllm:request_success_total") == finished
    rows = await wait_rows(gw, database_url, 1 + tried)
    _, status, prompt_tokens, completion, streamed, cancelled = rows[-1]
    assert (status, streamed, cancelled) == (200, True, True)
    async with gw.client(headers={"x-api-key": key}) as client:
        counted = await client.post("/v1/messages/count_tokens", json=body_of(1, prompt))
    assert prompt_tokens == counted.json()["input_tokens"] > 0 and 3 <= completion < 1500


async def _post(gw: RunningGateway, key: str, path: str, body: dict[str, Any]) -> Any:
    async with gw.client(headers=bearer(key)) as client:
        response = await client.post(path, json=body)
    assert response.status_code == 200, (path, response.text)
    return response.json()


async def test_tokenize_and_detokenize_smollm2(
    gw: RunningGateway, chat_engine: Engine, database_url: str
) -> None:
    key = (await create_key(gw)).secret
    tokenized = await _post(
        gw, key, "/tokenize", {"model": chat_engine.model, "prompt": "Hello, world!"}
    )
    assert tokenized["count"] == len(tokenized["tokens"]) > 0
    assert tokenized["max_model_len"] == 2048
    text = await _post(
        gw, key, "/detokenize", {"model": chat_engine.model, "tokens": tokenized["tokens"]}
    )
    assert text["prompt"] == "Hello, world!"
    rows = await wait_rows(gw, database_url, 2)
    assert [r[1:4] for r in rows] == [(200, 0, 0), (200, 0, 0)]


async def test_pooling_score_and_rerank_all_minilm(
    gw: RunningGateway, embedding_engine: Engine, database_url: str
) -> None:
    key = (await create_key(gw, tpm=100_000)).secret
    model = embedding_engine.model
    pooled = await _post(gw, key, "/pooling", {"model": model, "input": "a cat"})
    assert len(pooled["data"][0]["data"]) == 384
    scored = await _post(gw, key, "/score", {"model": model, "text_1": QUERY, "text_2": DOCUMENTS})
    scores = [row["score"] for row in scored["data"]]
    assert scores[1] > scores[0]
    answers = [pooled, scored]
    for path in ("/rerank", "/v1/rerank", "/v2/rerank"):
        reranked = await _post(
            gw, key, path, {"model": model, "query": QUERY, "documents": DOCUMENTS}
        )
        assert reranked["results"][0]["index"] == 1  # Paris first
        answers.append(reranked)
    rows = await wait_rows(gw, database_url, len(answers))
    assert [r[2] for r in rows] == [a["usage"]["prompt_tokens"] for a in answers]
    assert all(r[2] > 0 and r[3] == 0 for r in rows)


async def test_routes_the_engines_here_do_not_serve_are_404(
    gw: RunningGateway, chat_engine: Engine, embedding_engine: Engine
) -> None:
    key = (await create_key(gw)).secret
    async with gw.client(headers=bearer(key)) as client:
        classify = await client.post(
            "/classify", json={"model": embedding_engine.model, "input": "great!"}
        )
        audio = await client.post(
            "/v1/audio/transcriptions",
            data={"model": chat_engine.model},
            files={"file": ("a.wav", b"RIFF" + bytes(1000))},
        )
        rerank_on_chat = await client.post(
            "/rerank", json={"model": chat_engine.model, "query": "q", "documents": ["d"]}
        )
    for response in (classify, audio, rerank_on_chat):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "route_not_served"
