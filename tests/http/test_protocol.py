"""The request head's cap and deadline, on a real uvicorn with the gateway's protocol."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn

from gateway.http.asgi import Receive, Scope, Send, send_bytes
from gateway.http.protocol import BoundedHttpToolsProtocol
from tests.conftest import QuietServer
from tests.fakes.engine import free_port


class QuickProtocol(BoundedHttpToolsProtocol):
    max_head_bytes = 4096
    head_timeout_s = 0.5


class App:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        await send_bytes(send, 200, b"{}")


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=QuickProtocol, log_config=None, lifespan="off"
    )
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def closed_after(reader: asyncio.StreamReader, limit_s: float) -> float:
    """Seconds until the server closed the connection (EOF or reset)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit_s):
            while await reader.read(65536):
                pass
    except ConnectionError:
        pass
    return time.monotonic() - started


async def test_a_head_that_keeps_growing_is_cut_off_before_the_app_sees_it() -> None:
    app = App()
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nx-big: ")
        sent = 0
        try:
            for _ in range(1000):  # up to 1 MB of one header, 1 KB at a time
                writer.write(b"a" * 1024)
                await writer.drain()
                sent += 1024
                await asyncio.sleep(0.001)
        except ConnectionError:
            pass
        assert await closed_after(reader, 2.0) < 2.0
        writer.close()
    assert sent < 100 * 1024 and app.calls == 0


async def test_a_head_that_never_completes_is_closed_at_the_deadline() -> None:
    app = App()
    async with serving(app) as port:
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")  # then silence
        slow = await closed_after(reader, 3.0)
        idle = await closed_after(idle_reader, 3.0)  # never sent a byte
        for w in (writer, idle_writer):
            w.close()
    assert 0.4 <= slow < 2.0 and idle < 2.0 and app.calls == 0


async def test_ordinary_requests_on_a_kept_alive_connection_are_untouched() -> None:
    app = App()
    async with serving(app) as port, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{port}/"
        first = await client.get(url, headers={"x-ok": "a" * 3000})
        await asyncio.sleep(0.8)  # longer than the head deadline, between two requests
        second = await client.post(url, content=b"x" * 100_000)  # a body is not a head
    assert first.status_code == second.status_code == 200 and app.calls == 2
