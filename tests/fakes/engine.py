"""A fake vLLM OpenAI server on loopback, for fast, deterministic tests.

It behaves like vLLM where the gateway depends on it (model cards with `max_model_len`,
SSE framing, the usage chunk only with `stream_options.include_usage`, 400 for
`stream_options` without `stream`) and can be told to misbehave: errors, delays, a dead
stream, a flat old-style error body. It records what it received and which streams
the client abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.lora import LoraRoutes, LoraState
from tests.fakes.serving import ServingRoutes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Behaviour:
    chunks: int = 3
    chunk_delay: float = 0.0
    first_delay: float = 0.0
    fail_status: int | None = None
    fail_body: Any = None
    die_after_chunks: int | None = None  # drop the connection mid-stream
    healthy: bool = True
    max_model_len: int = 2048
    # A scripted chat answer: the request body -> the assistant message (content and/or
    # tool_calls). Streams send its content word by word.
    reply: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Paths the engine has no route for (vLLM serves some only for some kinds of model).
    unserved: set[str] = field(default_factory=set)


@dataclass
class Seen:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)  # request ids whose client went away
    finished: list[str] = field(default_factory=list)
    tokenized: list[dict[str, Any]] = field(default_factory=list)  # /tokenize bodies


class FakeEngine(ServingRoutes, LoraRoutes):
    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.lora = LoraState()
        self.behaviour = Behaviour()
        self.seen = Seen()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/tokenize", self._tokenize)
        self.add_serving_routes(app)
        self.add_lora_routes(app)
        return app

    async def start(self) -> FakeEngine:
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- routes ----------------------------------------------------------------------
    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.behaviour.healthy else 503)

    async def _models(self, request: web.Request) -> web.Response:
        card = {
            "id": self.model,
            "object": "model",
            "created": 1700000000,
            "owned_by": "vllm",
            "root": f"/models/{self.model}",
            "parent": None,
            "max_model_len": self.behaviour.max_model_len,
        }
        return web.json_response({"object": "list", "data": [card, *self.lora_cards()]})

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body = orjson.loads(await request.read())
        self.seen.bodies.append(body)
        self.seen.headers.append({k.lower(): v for k, v in request.headers.items()})
        return body  # type: ignore[no-any-return]

    def _failure(self) -> web.Response | None:
        b = self.behaviour
        if b.fail_status is None:
            return None
        body = b.fail_body or {
            "error": {"message": "boom", "type": "BadRequestError", "param": None, "code": 400}
        }
        return web.json_response(body, status=b.fail_status)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        body = await self._record(request)
        if (failure := self._failure()) is not None:
            return failure
        if body.get("stream_options") is not None and not body.get("stream"):
            return web.json_response(
                {
                    "object": "error",
                    "message": "Stream options can only be defined when `stream=True`.",
                    "type": "BadRequestError",
                    "param": None,
                    "code": 400,
                },
                status=400,
            )
        await asyncio.sleep(self.behaviour.first_delay)
        rid = request.headers.get("x-request-id", "")
        kind = "chat.completion" if chat else "text_completion"
        n = self.behaviour.chunks
        scripted = self.behaviour.reply(body) if chat and self.behaviour.reply else None
        pieces = [f"tok{i} " for i in range(n)]
        if scripted is not None:
            pieces = [w + " " for w in str(scripted.get("content") or "").split()] or pieces
            n = len(pieces)
        usage = {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}
        if not body.get("stream"):
            text = "".join(pieces)
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if scripted is not None:
                message = {"role": "assistant", "content": None, **scripted}
            choice: dict[str, Any] = (
                {"index": 0, "message": message, "finish_reason": "length"}
                if chat
                else {"index": 0, "text": text, "finish_reason": "length"}
            )
            self.seen.finished.append(rid)
            return web.json_response(
                {
                    "id": "cmpl-1",
                    "object": kind,
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [choice],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        obj = kind + ".chunk" if chat else kind
        try:
            for i in range(n):
                if self.behaviour.die_after_chunks == i:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                delta = {"content": pieces[i]}
                choice = {"index": 0, "delta": delta} if chat else {"index": 0, "text": pieces[i]}
                chunk = {"id": "cmpl-1", "object": obj, "model": body["model"], "choices": [choice]}
                await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
                await asyncio.sleep(self.behaviour.chunk_delay)
            if (body.get("stream_options") or {}).get("include_usage"):
                final = {
                    "id": "cmpl-1",
                    "object": obj,
                    "model": body["model"],
                    "choices": [],
                    "usage": usage,
                }
                await response.write(b"data: " + orjson.dumps(final) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            # vLLM aborts generation here and frees the request's KV cache.
            self.seen.aborted.append(rid)
            raise
        self.seen.finished.append(rid)
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if (failure := self._failure()) is not None:
            return failure
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(str(t))), 1.0, 0.0]}
            for i, t in enumerate(inputs)
        ]
        usage = {"prompt_tokens": len(inputs) * 3, "total_tokens": len(inputs) * 3}
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        usage = {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
        done = {
            "id": "resp_1",
            "object": "response",
            "status": "completed",
            "model": body["model"],
            "output": [],
            "usage": usage,
        }
        if not body.get("stream"):
            return web.json_response(done)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        events = [
            (
                "response.created",
                {
                    "type": "response.created",
                    "response": {**done, "status": "in_progress", "usage": None},
                },
            ),
            ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "hi"}),
            ("response.completed", {"type": "response.completed", "response": done}),
        ]
        for name, payload in events:
            await response.write(
                f"event: {name}\n".encode() + b"data: " + orjson.dumps(payload) + b"\n\n"
            )
        await response.write_eof()
        return response

    async def _tokenize(self, request: web.Request) -> web.Response:
        """vLLM's shape. A token is a whitespace-separated word; a chat message adds
        TEMPLATE_TOKENS_PER_MESSAGE, the generation prompt TEMPLATE_TOKENS_GENERATION."""
        body = orjson.loads(await request.read())
        self.seen.tokenized.append(body)
        if "messages" in body:
            count = TEMPLATE_TOKENS_GENERATION + sum(
                TEMPLATE_TOKENS_PER_MESSAGE + len(_words(m.get("content")))
                for m in body["messages"]
            )
        else:
            prompt = body.get("prompt", "")
            count = len(prompt) if isinstance(prompt, list) else len(_words(prompt))
        return web.json_response(
            {
                "count": count,
                "max_model_len": self.behaviour.max_model_len,
                "tokens": list(range(count)),
            }
        )


TEMPLATE_TOKENS_PER_MESSAGE = 4
TEMPLATE_TOKENS_GENERATION = 3


def _words(content: Any) -> list[str]:
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "").split()


@contextlib.asynccontextmanager
async def running_engine(model: str = "fake-model") -> Any:
    engine = await FakeEngine(model).start()
    try:
        yield engine
    finally:
        await engine.stop()
