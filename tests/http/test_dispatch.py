"""The fast path: exact paths (and a few prefixes) go straight to their pure-ASGI handler,
everything else to FastAPI."""

from __future__ import annotations

import pytest

from gateway.http.asgi import ASGIApp
from gateway.http.dispatch import FastPathRouter
from tests.http.exchange import Recorder, call, http_scope


def router() -> tuple[FastPathRouter, dict[str, Recorder]]:
    apps = {
        name: Recorder(name=name) for name in ("chat", "root", "models", "models_admin", "fallback")
    }
    routes: dict[str, ASGIApp] = {"/v1/chat/completions": apps["chat"], "/": apps["root"]}
    prefixes: dict[str, ASGIApp] = {
        "/v1/models/": apps["models"],
        "/v1/models/admin/": apps["models_admin"],
    }
    return FastPathRouter(routes, apps["fallback"], prefixes), apps


@pytest.mark.parametrize(
    ("path", "handler"),
    [
        ("/v1/chat/completions", "chat"),
        ("/v1/chat/completions/", "chat"),  # a trailing slash is the same route
        ("/", "root"),
        ("/v1/models/fake-model", "models"),
        ("/v1/models/org/model-with/slashes", "models"),
        ("/v1/models/admin/x", "models"),  # the first prefix that matches wins
        ("/v1/models", "fallback"),  # the prefix is `/v1/models/`: the list is FastAPI's
        ("/v1/chat/completions/x", "fallback"),  # exact paths only
        ("/V1/chat/completions", "fallback"),  # paths are case-sensitive
        ("/admin/keys", "fallback"),
    ],
)
async def test_each_path_reaches_one_handler(path: str, handler: str) -> None:
    app, apps = router()
    exchange = await call(app, http_scope(path, "POST"))
    assert exchange.headers["x-app"] == handler
    assert [name for name, a in apps.items() if a.scopes] == [handler]


async def test_the_handler_gets_the_request_as_it_came() -> None:
    app, apps = router()
    scope = http_scope("/v1/chat/completions/", "POST", [("authorization", "Bearer k")])
    exchange = await call(app, scope)
    assert apps["chat"].scopes == [scope] and apps["chat"].sends == [exchange.send]
    assert scope["path"] == "/v1/chat/completions/"  # stripped for the lookup only


async def test_lifespan_and_other_scopes_go_to_fastapi() -> None:
    app, apps = router()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await call(app, scope)
    assert apps["fallback"].scopes == [scope]
