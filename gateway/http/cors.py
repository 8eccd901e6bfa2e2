"""CORS for browser clients, skipped for everyone else.

Starlette's CORSMiddleware wraps the `send` of every response, browser or not; the SDKs,
curl and LangChain send no `Origin`, so their requests go straight through.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware

from gateway.http.asgi import ASGIApp, Receive, Scope, Send, header


class BrowserCORS:
    def __init__(self, app: ASGIApp, origins: list[str], expose_headers: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["*"],
            # The SDKs add x-stainless-* headers; Open WebUI sends authorization.
            allow_headers=["*"],
            expose_headers=expose_headers,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and header(scope, b"origin") is not None:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
