"""CORS for browser clients (Open WebUI's direct connections), and nothing at all for the
SDKs, curl and LangChain, which send no `Origin`."""

from __future__ import annotations

from gateway.http.cors import BrowserCORS
from tests.http.exchange import Recorder, call, http_scope

EXPOSED = ["x-request-id", "retry-after", "x-ratelimit-remaining-tokens"]
PREFLIGHT = [
    ("origin", "http://localhost:3000"),
    ("access-control-request-method", "POST"),
    ("access-control-request-headers", "authorization, content-type, x-stainless-os"),
]


def cors(origins: list[str] | None = None) -> tuple[BrowserCORS, Recorder]:
    app = Recorder()
    return BrowserCORS(app, origins or ["*"], EXPOSED), app


async def test_without_an_origin_the_app_answers_untouched() -> None:
    middleware, app = cors()
    exchange = await call(middleware, http_scope("/v1/models"), ())
    assert exchange.status == 200
    assert not [h for h in exchange.headers if h.startswith("access-control-")]
    # Not even wrapped: the app was handed the server's own `send`.
    assert app.sends == [exchange.send]


async def test_an_options_request_without_an_origin_is_the_apps_to_answer() -> None:
    middleware, app = cors()
    scope = http_scope("/v1/chat/completions", "OPTIONS", PREFLIGHT[1:])
    exchange = await call(middleware, scope)
    assert exchange.headers["x-app"] == "app" and len(app.scopes) == 1


async def test_a_preflight_allows_the_sdk_headers_without_calling_the_app() -> None:
    middleware, app = cors()
    exchange = await call(middleware, http_scope("/v1/chat/completions", "OPTIONS", PREFLIGHT))
    assert exchange.status == 200 and app.scopes == []
    allowed = exchange.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-stainless-os"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert "POST" in exchange.headers["access-control-allow-methods"]
    assert exchange.headers["access-control-max-age"] == "600"


async def test_a_browsers_request_may_read_the_gateways_headers() -> None:
    middleware, _ = cors()
    scope = http_scope("/v1/models", headers=[("origin", "http://localhost:3000")])
    exchange = await call(middleware, scope)
    assert exchange.status == 200 and exchange.body == b"ok"
    assert exchange.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip() for h in exchange.headers["access-control-expose-headers"].split(",")}
    assert exposed == set(EXPOSED)


async def test_only_the_configured_origins_are_allowed() -> None:
    middleware, app = cors(["https://chat.example"])
    preflight = http_scope(
        "/v1/chat/completions",
        "OPTIONS",
        [("origin", "https://evil.example"), *PREFLIGHT[1:]],
    )
    refused = await call(middleware, preflight)
    assert refused.status == 400 and "access-control-allow-origin" not in refused.headers
    simple = await call(
        middleware, http_scope("/v1/models", headers=[("origin", "https://evil.example")])
    )
    assert "access-control-allow-origin" not in simple.headers  # the browser hides it
    welcome = await call(
        middleware, http_scope("/v1/models", headers=[("origin", "https://chat.example")])
    )
    assert welcome.headers["access-control-allow-origin"] == "https://chat.example"
    assert app.scopes  # the simple requests reached the app; the refused preflight did not


async def test_other_scopes_pass_straight_through() -> None:
    middleware, app = cors()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await call(middleware, scope)
    assert app.scopes == [scope]
