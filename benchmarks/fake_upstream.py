"""A fake OpenAI/vLLM engine that answers at once, so a benchmark measures the proxy.

Raw asyncio with httptools' parser (and uvloop when present): about twice as fast as
aiohttp.web here, which leaves more of the shared cores to whatever is measured.

    python -m benchmarks.fake_upstream --port 9100 --chunks 20 --delay-ms 5

Routes: `GET /health`, `GET /v1/models` (one model with `max_model_len`),
`POST /v1/chat/completions`: a small fixed JSON body with usage, or with `"stream": true`
an SSE stream of `max_tokens` (default `--chunks`) content chunks `--delay-ms` apart, a
usage chunk when `stream_options.include_usage` is set, then `data: [DONE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from dataclasses import dataclass
from typing import Any, cast

import httptools
import orjson

MODEL = "bench-model"
MAX_MODEL_LEN = 8192
PROMPT_TOKENS = 12
_ID = "chatcmpl-bench"

_MODELS = orjson.dumps(
    {
        "object": "list",
        "data": [
            {
                "id": MODEL,
                "object": "model",
                "created": 0,
                "owned_by": "vllm",
                "root": MODEL,
                "parent": None,
                "max_model_len": MAX_MODEL_LEN,
                "permission": [],
            }
        ],
    }
)
_COMPLETION = orjson.dumps(
    {
        "id": _ID,
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the bench engine."},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 7, "total_tokens": 19},
    }
)
_HEALTH = b""


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": _ID,
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return _frame(b"data: " + orjson.dumps(body) + b"\n\n")


def _usage_chunk(completion_tokens: int) -> bytes:
    body = {
        "id": _ID,
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": completion_tokens,
            "total_tokens": PROMPT_TOKENS + completion_tokens,
        },
    }
    return _frame(b"data: " + orjson.dumps(body) + b"\n\n")


def _frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunked-encoding frame."""
    return b"%x\r\n%s\r\n" % (len(data), data)


_FIRST = _chunk({"role": "assistant", "content": "tok "})
_TOKEN = _chunk({"content": "tok "})
_LAST = _chunk({"content": "tok "}, finish="stop")
_DONE = _frame(b"data: [DONE]\n\n") + b"0\r\n\r\n"

_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}


def _response(status: int, body: bytes, keep_alive: bool) -> bytes:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % (
        status,
        _REASONS[status],
        len(body),
    )
    if not keep_alive:
        head += b"connection: close\r\n"
    return head + b"\r\n" + body


def _error(message: str) -> bytes:
    # vLLM's own (older, flat) error shape: the gateway is expected to normalise it.
    return orjson.dumps({"object": "error", "message": message, "type": "BadRequestError"})


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


@dataclass(slots=True)
class Options:
    chunks: int = 20
    delay_s: float = 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection; requests are answered in order (no pipelining needed)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.stream_task: asyncio.Task[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(_response(400, _error("bad request"), keep_alive=False))
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        # Like vLLM: a client that leaves aborts its generation.
        if self.stream_task is not None:
            self.stream_task.cancel()
        self.transport = None

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        keep_alive = self.parser.should_keep_alive()
        path = self.url.split(b"?", 1)[0]
        if path == b"/v1/chat/completions" and method == b"POST":
            self._chat(b"".join(self.body), keep_alive)
        elif path == b"/health" and method == b"GET":
            self._write(_response(200, _HEALTH, keep_alive))
        elif path == b"/v1/models" and method == b"GET":
            self._write(_response(200, _MODELS, keep_alive))
        else:
            self._write(_response(404, _error("not found"), keep_alive))
        if not keep_alive and self.stream_task is None:
            self._close()

    # handlers
    def _chat(self, raw: bytes, keep_alive: bool) -> None:
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._write(_response(400, _error("body is not JSON"), keep_alive))
            return
        if not isinstance(request, dict) or not request.get("stream"):
            self._write(_response(200, _COMPLETION, keep_alive))
            return
        options = request.get("stream_options") or {}
        chunks = request.get("max_tokens") or self.options.chunks
        usage = bool(isinstance(options, dict) and options.get("include_usage"))
        self._write(_STREAM_HEAD)
        if self.options.delay_s <= 0:
            self._write(_stream_bytes(chunks, usage))
            if not keep_alive:
                self._close()
            return
        self.stream_task = asyncio.get_running_loop().create_task(
            self._stream(chunks, usage, keep_alive)
        )

    async def _stream(self, chunks: int, usage: bool, keep_alive: bool) -> None:
        try:
            for i in range(chunks):
                if i:
                    await asyncio.sleep(self.options.delay_s)
                self._write(_FIRST if i == 0 else _LAST if i == chunks - 1 else _TOKEN)
            self._write((_usage_chunk(chunks) if usage else b"") + _DONE)
            if not keep_alive:
                self._close()
        finally:
            self.stream_task = None

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _stream_bytes(chunks: int, usage: bool) -> bytes:
    parts = [_FIRST if i == 0 else _LAST if i == chunks - 1 else _TOKEN for i in range(chunks)]
    if usage:
        parts.append(_usage_chunk(chunks))
    parts.append(_DONE)
    return b"".join(parts)


async def serve(host: str, port: int, options: Options) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(options), host, port, reuse_address=True, backlog=1024
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="gap between chunks")
    args = parser.parse_args(argv)
    install_uvloop()
    asyncio.run(serve(args.host, args.port, Options(args.chunks, args.delay_ms / 1000)))


if __name__ == "__main__":
    main()
