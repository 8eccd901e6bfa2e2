"""The raw engines the e2e suite stands on, and the vLLM behaviour the gateway relies on."""

from __future__ import annotations

import base64
import json
import math
import struct
from pathlib import Path

import httpx
import pytest

from gateway.local.engine import Engine
from gateway.local.models import prepare_chat_model

TIMEOUT = httpx.Timeout(120.0)


def post(engine: Engine, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(engine.base_url + path, json=body, timeout=TIMEOUT)


def embed(engine: Engine, texts: list[str]) -> list[list[float]]:
    reply = post(engine, "/v1/embeddings", {"model": engine.model, "input": texts})
    reply.raise_for_status()
    return [row["embedding"] for row in reply.json()["data"]]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_converted_chat_model_is_a_plain_hf_folder(model_cache: Path) -> None:
    folder = prepare_chat_model(model_cache).path  # cached: the engine fixture built it
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # the weights are no longer GGUF-quantized
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "<|im_start|>" in (folder / "chat_template.jinja").read_text()
    assert (folder / "model.safetensors").stat().st_size > 500_000_000  # float32


def test_chat_answers_correctly(chat_engine: Engine) -> None:
    # Greedy decoding of a fact the model knows: catches a broken conversion or dtype
    # (bfloat16 on vLLM's CPU path turns this answer into gibberish).
    reply = post(
        chat_engine,
        "/v1/chat/completions",
        {
            "model": chat_engine.model,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 20,
            "temperature": 0,
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "paris" in body["choices"][0]["message"]["content"].lower()
    assert body["usage"]["completion_tokens"] > 0


def test_models_report_max_model_len(chat_engine: Engine) -> None:
    reply = httpx.get(chat_engine.base_url + "/v1/models", timeout=TIMEOUT)
    (card,) = reply.json()["data"]
    assert card["id"] == "smollm2-135m-instruct"
    assert card["max_model_len"] == 2048


def test_stream_sends_usage_only_when_asked(chat_engine: Engine) -> None:
    body: dict[str, object] = {
        "model": chat_engine.model,
        "messages": [{"role": "user", "content": "Name one colour."}],
        "max_tokens": 5,
        "stream": True,
    }
    plain = post(chat_engine, "/v1/chat/completions", body).text
    with_usage = post(
        chat_engine, "/v1/chat/completions", body | {"stream_options": {"include_usage": True}}
    ).text
    assert '"usage"' not in plain.replace('"usage":null', "")
    assert '"completion_tokens":5' in with_usage.replace(" ", "")
    assert with_usage.rstrip().endswith("data: [DONE]")


def test_stream_options_without_stream_is_refused(chat_engine: Engine) -> None:
    reply = post(
        chat_engine,
        "/v1/chat/completions",
        {
            "model": chat_engine.model,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 1,
            "stream_options": {"include_usage": True},
        },
    )
    assert reply.status_code == 400


def test_embeddings_are_384_d_and_meaningful(embedding_engine: Engine) -> None:
    cat, kitten, taxes = embed(
        embedding_engine,
        [
            "A cat sits on the mat.",
            "A kitten is sitting on a rug.",
            "Quarterly tax filing deadlines for corporations.",
        ],
    )
    assert len(cat) == len(kitten) == len(taxes) == 384
    assert cosine(cat, kitten) > cosine(cat, taxes) + 0.3
    assert math.isclose(cosine(cat, cat), 1.0, rel_tol=1e-4)
    assert math.isclose(math.sqrt(sum(x * x for x in cat)), 1.0, rel_tol=1e-3)  # normalised


def test_embeddings_in_base64_match_floats(embedding_engine: Engine) -> None:
    # openai-python asks for base64 unless told otherwise.
    (floats,) = embed(embedding_engine, ["a cat"])
    reply = post(
        embedding_engine,
        "/v1/embeddings",
        {"model": embedding_engine.model, "input": ["a cat"], "encoding_format": "base64"},
    )
    raw = base64.b64decode(reply.json()["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(floats, abs=1e-5)
