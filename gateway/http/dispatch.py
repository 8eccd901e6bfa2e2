"""Exact-path dispatch for the hot OpenAI routes, in front of the FastAPI app.

The proxy routes skip FastAPI's routing and dependency machinery: a dict lookup hands
the request straight to a pure ASGI handler. Everything else falls through to FastAPI.
"""

from __future__ import annotations

from gateway.http.asgi import ASGIApp, Receive, Scope, Send


class FastPathRouter:
    def __init__(
        self,
        routes: dict[str, ASGIApp],
        fallback: ASGIApp,
        prefixes: dict[str, ASGIApp] | None = None,
    ) -> None:
        self.routes = routes
        self.prefixes = prefixes or {}
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            handler = self.routes.get(path.rstrip("/") or "/")
            if handler is None:
                for prefix, app in self.prefixes.items():
                    if path.startswith(prefix):
                        handler = app
                        break
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.fallback(scope, receive, send)
