"""A minimal reverse proxy, to compare upstream HTTP clients with nothing else in the way.

    python -m benchmarks.client_proxy --client httpx --port 9200 --upstream http://127.0.0.1:9100

`aiohttp` and `httpx`: a pure ASGI app under uvicorn (uvloop + httptools), served exactly
as `gateway serve` serves the gateway, forwarding each request with one shared
`aiohttp.ClientSession` or `httpx.AsyncClient`. Both pools are unbounded and keep every
connection alive (httpx's default keeps only 20, which would reconnect at c=32 and make
the comparison unfair). `aiohttp-web`: aiohttp's own server plus its client, no ASGI:
about the ceiling of a Python proxy on this machine.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import aiohttp
import httpx

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLIENTS = ("aiohttp", "httpx", "aiohttp-web")
_FORWARDED = {"content-type": "application/json"}


class Forwarder(Protocol):
    async def start(self) -> None: ...
    async def post(self, url: str, body: bytes) -> tuple[int, bytes, bytes]: ...
    async def close(self) -> None: ...


class AiohttpForwarder:
    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=600),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent"),
        )

    async def post(self, url: str, body: bytes) -> tuple[int, bytes, bytes]:
        assert self.session is not None
        async with self.session.post(url, data=body, headers=_FORWARDED) as response:
            data = await response.read()
            content_type = response.headers.get("content-type", "application/json")
            return response.status, content_type.encode(), data

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


class HttpxForwarder:
    def __init__(self) -> None:
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=None, keepalive_expiry=30
            ),
            timeout=httpx.Timeout(600, connect=5),
        )

    async def post(self, url: str, body: bytes) -> tuple[int, bytes, bytes]:
        assert self.client is not None
        response = await self.client.post(url, content=body, headers=_FORWARDED)
        content_type = response.headers.get("content-type", "application/json")
        return response.status_code, content_type.encode(), response.content

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class ProxyApp:
    """Pure ASGI: read the body, forward it, send the answer back whole."""

    def __init__(self, upstream: str, forwarder: Forwarder) -> None:
        self.upstream = upstream.rstrip("/")
        self.forwarder = forwarder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["path"] == "/health":
            await _send(send, 200, b"application/json", b"{}")
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        status, content_type, body = await self.forwarder.post(
            self.upstream + scope["path"], b"".join(chunks)
        )
        await _send(send, status, content_type, body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.forwarder.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.forwarder.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _send(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def run_aiohttp_web(upstream: str, host: str, port: int) -> None:
    from aiohttp import web

    forwarder = AiohttpForwarder()
    base = upstream.rstrip("/")

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/health":
            return web.Response(body=b"{}", content_type="application/json")
        status, content_type, body = await forwarder.post(base + request.path, await request.read())
        return web.Response(
            status=status, body=body, headers={"content-type": content_type.decode()}
        )

    async def on_startup(_: web.Application) -> None:
        await forwarder.start()

    async def on_cleanup(_: web.Application) -> None:
        await forwarder.close()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    from benchmarks.fake_upstream import install_uvloop

    install_uvloop()
    web.run_app(app, host=host, port=port, access_log=None, print=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=CLIENTS, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9100")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args(argv)
    if args.client == "aiohttp-web":
        run_aiohttp_web(args.upstream, args.host, args.port)
        return
    import uvicorn

    forwarder: Forwarder = AiohttpForwarder() if args.client == "aiohttp" else HttpxForwarder()
    uvicorn.run(
        ProxyApp(args.upstream, forwarder),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    main()
