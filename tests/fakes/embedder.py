"""A fake embedding engine with meaningful vectors: hashed bag of words in 64 dimensions.

Texts that share words get close vectors, so retrieval tests can assert that the right
chunk ranks first without a real model. It speaks vLLM's `/v1/models` (with
`max_model_len`), `/v1/embeddings` and `/tokenize` (one token per word or symbol), and can
be slowed down or told to fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.engine import free_port

DIMS = 64
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)


# Cached: a document repeats its words, and hashing each occurrence made this fake, not the
# gateway, the cost that the ingestion benchmark measured.
@functools.lru_cache(maxsize=1 << 16)
def _bucket(word: str, dims: int) -> tuple[int, float]:
    if len(word) > 3 and word.endswith("s"):
        word = word[:-1]  # a crude stem: "invoices" finds "invoice"
    digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dims, 1.0 if (value >> 32) & 1 else -1.0


def embed_text(text: str, dims: int = DIMS) -> list[float]:
    """Deterministic and unit-length; the same words give the same vector."""
    vector = [0.0] * dims
    for word in _WORD.findall(text.lower()):
        index, sign = _bucket(word, dims)
        vector[index] += sign
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:
        vector[0] = 1.0
        return vector
    return [x / norm for x in vector]


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@dataclass
class EmbedderBehaviour:
    delay_s: float = 0.0  # per /v1/embeddings request
    fail_status: int | None = None
    max_model_len: int = 512
    dims: int = DIMS


@dataclass
class EmbedderSeen:
    embedding_requests: int = 0
    inputs: int = 0
    tokenize_requests: int = 0
    in_flight: int = 0  # /v1/embeddings requests being answered now
    max_in_flight: int = 0  # the most at once
    bodies: list[dict[str, Any]] = field(default_factory=list)


class FakeEmbedder:
    def __init__(self, model: str = "fake-embed") -> None:
        self.model = model
        self.behaviour = EmbedderBehaviour()
        self.seen = EmbedderSeen()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/tokenize", self._tokenize)
        return app

    async def start(self) -> FakeEmbedder:
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        self._stopping.set()  # release delayed requests: nobody waits for them any more
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response()

    async def _models(self, request: web.Request) -> web.Response:
        card = {
            "id": self.model,
            "object": "model",
            "created": 1700000000,
            "owned_by": "vllm",
            "root": f"/models/{self.model}",
            "max_model_len": self.behaviour.max_model_len,
        }
        return web.json_response({"object": "list", "data": [card]})

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.seen.embedding_requests += 1
        self.seen.bodies.append({k: v for k, v in body.items() if k != "input"})
        self.seen.in_flight += 1
        self.seen.max_in_flight = max(self.seen.max_in_flight, self.seen.in_flight)
        try:
            if self.behaviour.delay_s:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.behaviour.delay_s)
        finally:
            self.seen.in_flight -= 1
        if self.behaviour.fail_status is not None:
            error = {"message": "embedding failed", "type": "BadRequestError", "code": 500}
            return web.json_response({"error": error}, status=self.behaviour.fail_status)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.seen.inputs += len(inputs)
        data = [
            {"object": "embedding", "index": i, "embedding": embed_text(t, self.behaviour.dims)}
            for i, t in enumerate(inputs)
        ]
        tokens = sum(count_tokens(t) for t in inputs)
        return web.Response(
            body=orjson.dumps(
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            ),
            content_type="application/json",
        )

    async def _tokenize(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.seen.tokenize_requests += 1
        n = count_tokens(str(body.get("prompt", "")))
        return web.json_response(
            {"count": n, "tokens": list(range(n)), "max_model_len": self.behaviour.max_model_len}
        )
