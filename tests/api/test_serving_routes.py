"""vLLM's other serving routes through the gateway: keys, limits, usage, aliases, the
404 for a route the model's engine does not serve, audio forms and their cap."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.admin import create_key
from tests.api.test_metering import wait_rows
from tests.conftest import GatewayFactory, RunningGateway, SdkFactory
from tests.fakes.engine import FakeEngine

QUERY = {"query": "capital of France", "documents": ["Paris is the capital.", "Bananas."]}
ROUTES: list[tuple[str, dict[str, Any], int]] = [
    # (path, body without model, prompt tokens charged: the fake's usage)
    ("/tokenize", {"prompt": "one two three"}, 0),
    ("/detokenize", {"tokens": [1, 2]}, 0),
    ("/pooling", {"input": "hello"}, 11),
    ("/classify", {"input": "hello"}, 11),
    ("/score", {"text_1": "a", "text_2": "b"}, 11),
    ("/v1/score", {"text_1": "a", "text_2": "b"}, 11),
    ("/rerank", QUERY, 13),
    ("/v1/rerank", QUERY, 13),
    ("/v2/rerank", QUERY, 13),
]


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


async def test_every_route_is_keyed_relayed_and_metered(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = await create_key(gw, tpm=100_000)
    async with gw.client(headers=key.headers) as client:
        for path, body, _ in ROUTES:
            response = await client.post(path, json={"model": "fake-model", **body})
            assert response.status_code == 200, (path, response.text)
    async with gw.client() as client:
        for path, body, _ in ROUTES:
            anonymous = await client.post(path, json={"model": "fake-model", **body})
            assert assert_openai_error(anonymous, 401)["code"] == "invalid_api_key"
    # The fake keeps /tokenize bodies apart (context fitting's tests read them).
    seen = engine.seen.tokenized + engine.seen.bodies
    assert [b["model"] for b in seen] == ["fake-model"] * len(ROUTES)
    rows = await wait_rows(gw, database_url, len(ROUTES))
    # (key, status, prompt, completion, streamed, cancelled): no answer tokens anywhere.
    assert [r[1:4] for r in rows] == [(200, tokens, 0) for _, _, tokens in ROUTES]


async def test_rerank_answer_is_relayed_as_the_engine_wrote_it(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        response = await client.post("/v1/rerank", json={"model": "fake-model", **QUERY})
    results = response.json()["results"]
    assert [r["document"]["text"] for r in results] == QUERY["documents"]
    assert response.json()["usage"] == {"prompt_tokens": 13, "total_tokens": 13}


async def test_limits_apply(keyed_factory: GatewayFactory) -> None:
    gw = await keyed_factory()
    key = await create_key(gw, rpm=1)
    async with gw.client(headers=key.headers) as client:
        first = await client.post("/rerank", json={"model": "fake-model", **QUERY})
        second = await client.post("/tokenize", json={"model": "fake-model", "prompt": "x"})
    assert first.status_code == 200
    assert assert_openai_error(second, 429)["code"] == "rate_limit_exceeded"
    assert "retry-after" in second.headers


async def test_a_route_the_engine_does_not_serve_is_a_clear_404(
    gateway: RunningGateway, engine: FakeEngine
) -> None:
    engine.behaviour.unserved = {"/classify", "/v1/audio/transcriptions"}
    async with gateway.client() as client:
        response = await client.post("/classify", json={"model": "fake-model", "input": "x"})
        audio = await client.post(
            "/v1/audio/transcriptions",
            data={"model": "fake-model"},
            files={"file": ("a.wav", b"RIFF0000WAVE")},
        )
    for answer in (response, audio):
        error = assert_openai_error(answer, 404)
        assert error["code"] == "route_not_served"
        assert "does not serve /" in error["message"] and "fake-model" in error["message"]


async def test_model_is_required_aliased_and_checked(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url], model_aliases={"reranker": "fake-model"})
    async with gw.client() as client:
        missing = await client.post("/rerank", json=QUERY)
        unknown = await client.post("/rerank", json={"model": "nope", **QUERY})
        aliased = await client.post("/rerank", json={"model": "reranker", **QUERY})
        not_json = await client.post(
            "/pooling", content=b"[", headers={"content-type": "application/json"}
        )
    assert assert_openai_error(missing, 400)["param"] == "model"
    assert assert_openai_error(unknown, 404)["code"] == "model_not_found"
    assert aliased.status_code == 200 and engine.seen.bodies[-1]["model"] == "fake-model"
    assert_openai_error(not_json, 400)


async def test_bodies_have_the_openai_routes_cap(gateway: RunningGateway) -> None:
    """Not the 64 KiB of unknown paths: a long document to rerank is an ordinary body."""
    long_query = {**QUERY, "documents": ["word " * 40_000]}
    async with gateway.client() as client:
        response = await client.post("/rerank", json={"model": "fake-model", **long_query})
    assert response.status_code == 200


async def test_audio_transcription_with_the_openai_sdk(
    sdk: SdkFactory, engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory(model_aliases={"whisper-1": "fake-model"})
    key = await create_key(gw, tpm=100_000)
    audio = b"RIFF" + bytes(20_000)
    client = sdk(gw, api_key=key.secret)
    transcript = await client.audio.transcriptions.create(model="whisper-1", file=("a.wav", audio))
    translation = await client.audio.translations.create(model="fake-model", file=("a.wav", audio))
    assert transcript.text == translation.text == "hello world"
    assert engine.seen.bodies[0] == {"model": "fake-model", "file_bytes": len(audio)}
    rows = await wait_rows(gw, database_url, 2)
    # The audio is no text prompt; the transcript (11 bytes) is charged as answer tokens.
    assert [r[1:4] for r in rows] == [(200, 0, 2), (200, 0, 2)]


async def test_audio_cap_and_form_errors(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url], max_audio_bytes=10_000)
    async with gw.client() as client:
        too_big = await client.post(
            "/v1/audio/transcriptions",
            data={"model": "fake-model"},
            files={"file": ("a.wav", bytes(20_000))},
        )
        as_json = await client.post("/v1/audio/transcriptions", json={"model": "fake-model"})
        no_model = await client.post("/v1/audio/translations", files={"file": ("a.wav", b"RIFF")})
    error = assert_openai_error(too_big, 413)
    assert "GATEWAY_MAX_AUDIO_BYTES" in error["message"]
    assert assert_openai_error(as_json, 415)["code"] == "unsupported_media_type"
    assert assert_openai_error(no_model, 400)["param"] == "model"
    assert engine.seen.bodies == []


@pytest.mark.parametrize("path", ["/tokenize", "/v1/rerank", "/v1/audio/transcriptions"])
async def test_wrong_method_is_an_openai_error(gateway: RunningGateway, path: str) -> None:
    async with gateway.client() as client:
        response = await client.get(path)
    assert_openai_error(response, 400)
