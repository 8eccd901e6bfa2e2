"""The fake engine's Anthropic Messages and other serving routes, shaped as vLLM 0.32
answers them (vllm/entrypoints/anthropic/, pooling/, serve/tokenize/, speech_to_text/).

Messages: the stream is vLLM's `event: ...\\ndata: ...` framing, usage in `message_start`
(the prompt) and `message_delta` (the final count); errors in Anthropic's outer shape
with vLLM's own type names. A route listed in `Behaviour.unserved` answers as FastAPI
does for a path it has no route for: 404 `{"detail": "Not Found"}`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.engine import Behaviour, Seen

PROMPT_TOKENS = 7  # what the fake reports for any prompt, as its chat route does
TOOL_INPUT = {"location": "Paris"}


def words(content: Any) -> list[str]:
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "").split()


def sse(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\n".encode() + b"data: " + orjson.dumps(payload) + b"\n\n"


class ServingRoutes:
    """Mixed into FakeEngine, which has these."""

    behaviour: Behaviour
    seen: Seen

    if TYPE_CHECKING:

        async def _record(self, request: web.Request) -> dict[str, Any]: ...

        def _failure(self) -> web.Response | None: ...

    def add_serving_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_post("/detokenize", self._detokenize)
        for path in ("/pooling", "/classify", "/score", "/v1/score"):
            app.router.add_post(path, self._pooling_like)
        for path in ("/rerank", "/v1/rerank", "/v2/rerank"):
            app.router.add_post(path, self._rerank)
        for path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
            app.router.add_post(path, self._audio)
        app.middlewares.append(self._unserved)

    @web.middleware
    async def _unserved(self, request: web.Request, handler: Any) -> Any:
        if request.path in self.behaviour.unserved:
            return web.json_response({"detail": "Not Found"}, status=404)
        return await handler(request)

    def _anthropic_failure(self) -> web.Response | None:
        b = self.behaviour
        if b.fail_status is None:
            return None
        body = b.fail_body or {
            "type": "error",
            "error": {"type": "BadRequestError", "message": "boom"},
        }
        return web.json_response(body, status=b.fail_status)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if (failure := self._anthropic_failure()) is not None:
            return failure
        await asyncio.sleep(self.behaviour.first_delay)
        rid = request.headers.get("x-request-id", "")
        n = self.behaviour.chunks
        tool = None
        if body.get("tools") and (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            tool = {"type": "tool_use", "id": "call_1", "name": body["tools"][0]["name"]}
        if not body.get("stream"):
            content: list[dict[str, Any]] = [
                {"type": "text", "text": "".join(f"tok{i} " for i in range(n))}
            ]
            if tool is not None:
                content = [{**tool, "input": TOOL_INPUT}]
            self.seen.finished.append(rid)
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "type": "message",
                    "role": "assistant",
                    "content": content,
                    "model": body["model"],
                    "stop_reason": "tool_use" if tool else "max_tokens",
                    "stop_sequence": None,
                    "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": n},
                }
            )
        response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        start = {
            "id": "chatcmpl-1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": body["model"],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 0},
        }
        try:
            await response.write(sse("message_start", {"type": "message_start", "message": start}))
            block = {**tool, "input": {}} if tool else {"type": "text", "text": ""}
            await response.write(
                sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": block},
                )
            )
            for i in range(n):
                if self.behaviour.die_after_chunks == i:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                delta = (
                    {
                        "type": "input_json_delta",
                        "partial_json": orjson.dumps(TOOL_INPUT).decode() if i == 0 else "",
                    }
                    if tool
                    else {"type": "text_delta", "text": f"tok{i} "}
                )
                await response.write(
                    sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": delta},
                    )
                )
                await asyncio.sleep(self.behaviour.chunk_delay)
            await response.write(
                sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            )
            stop = {"stop_reason": "tool_use" if tool else "max_tokens", "stop_sequence": None}
            usage = {"input_tokens": PROMPT_TOKENS, "output_tokens": n}
            await response.write(
                sse("message_delta", {"type": "message_delta", "delta": stop, "usage": usage})
            )
            await response.write(sse("message_stop", {"type": "message_stop"}))
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.seen.aborted.append(rid)
            raise
        self.seen.finished.append(rid)
        return response

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if (failure := self._anthropic_failure()) is not None:
            return failure
        count = len(words(body.get("system"))) + sum(
            len(words(m.get("content"))) for m in body.get("messages", [])
        )
        return web.json_response(
            {"input_tokens": count, "context_management": {"original_input_tokens": count}}
        )

    async def _detokenize(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        return web.json_response({"prompt": " ".join(f"t{t}" for t in body.get("tokens", []))})

    async def _pooling_like(self, request: web.Request) -> web.Response:
        """/pooling, /classify and /score: one row per input, usage without completion."""
        body = await self._record(request)
        if (failure := self._failure()) is not None:
            return failure
        usage = {"prompt_tokens": 11, "total_tokens": 11, "completion_tokens": 0}
        kind = request.path.rsplit("/", 1)[-1]
        row: dict[str, Any] = {"index": 0, "object": kind}
        if kind == "pooling":
            row["data"] = [0.1, 0.2, 0.3]
        elif kind == "classify":
            row.update(label="positive", probs=[0.9, 0.1], num_classes=2)
        else:
            row["score"] = 0.5
        return web.json_response(
            {
                "id": f"{kind}-1",
                "object": "list",
                "created": 0,
                "model": body["model"],
                "data": [row],
                "usage": usage,
            }
        )

    async def _rerank(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        documents = body.get("documents", [])
        results = [
            {"index": i, "document": {"text": d}, "relevance_score": 1.0 / (i + 1)}
            for i, d in enumerate(documents)
        ]
        return web.json_response(
            {
                "id": "rerank-1",
                "model": body["model"],
                "usage": {"prompt_tokens": 13, "total_tokens": 13},
                "results": results,
            }
        )

    async def _audio(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        size = len(upload.file.read()) if isinstance(upload, web.FileField) else 0
        self.seen.bodies.append({**fields, "file_bytes": size})
        self.seen.headers.append({k.lower(): v for k, v in request.headers.items()})
        return web.json_response(
            {"text": "hello world", "usage": {"type": "duration", "seconds": 3}}
        )
