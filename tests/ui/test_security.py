"""The console's security, without a browser: sign-in, cookies, CSRF, what pages reveal."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from typing import Any

import httpx

from gateway.ui import session as sessions
from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine
from tests.ui.conftest import hidden, sign_in

PAGES = ["/ui/keys", "/ui/usage", "/ui/engines", "/ui/stores", "/ui/evals", "/ui/playground"]


def _set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


async def _admin_keys(gw: RunningGateway) -> list[dict[str, Any]]:
    async with gw.client(headers=admin_headers()) as admin:
        return (await admin.get("/admin/keys")).json()["data"]  # type: ignore[no-any-return]


async def test_pages_need_a_session(console_gateway: RunningGateway) -> None:
    async with console_gateway.client() as client:
        for path in [*PAGES, "/ui/stores/vs_x"]:
            response = await client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == f"/ui/login?next={path}"
        htmx = await client.get("/ui/engines", headers={"hx-request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/ui/login"
        posted = await client.post("/ui/keys", data={"name": "x"})
        assert posted.status_code == 303
    assert await _admin_keys(console_gateway) == []


async def test_only_the_admin_key_signs_in(console_gateway: RunningGateway) -> None:
    async with console_gateway.client(headers=admin_headers()) as admin:
        user_key = (await create_key(admin, "user")).secret
    async with console_gateway.client() as client:
        for wrong in (user_key, "nope", "", ADMIN_KEY + "x"):
            response = await sign_in(client, wrong)
            assert response.status_code == 401, wrong
            assert "gw_console" not in _set_cookies(response)
            assert (await client.get("/ui/keys")).status_code == 303
        assert (await sign_in(client)).status_code == 303
        assert (await client.get("/ui/keys")).status_code == 200


async def test_sign_in_form_is_csrf_protected(console_gateway: RunningGateway) -> None:
    async with console_gateway.client() as client:
        # No pre-session cookie (a cross-site POST carries none: SameSite=Strict).
        bare = await client.post("/ui/login", data={"admin_key": ADMIN_KEY, "login_token": "x"})
        assert bare.status_code == 403
        token = hidden((await client.get("/ui/login")).text, "login_token")
        forged = await client.post(
            "/ui/login", data={"admin_key": ADMIN_KEY, "login_token": "0" * 64}
        )
        assert forged.status_code == 403
        assert "gw_console" not in _set_cookies(forged)
        # A token is bound to its own form's cookie: another browser's token is refused.
        client.cookies.clear()
        await client.get("/ui/login")
        data = {"admin_key": ADMIN_KEY, "login_token": token}
        refused = await client.post("/ui/login", data=data)
        assert refused.status_code == 403
        # The refusal re-renders the form with a new token for its new cookie.
        data["login_token"] = hidden(refused.text, "login_token")
        assert (await client.post("/ui/login", data=data)).status_code == 303


async def test_session_cookie_flags(console_gateway: RunningGateway) -> None:
    async with console_gateway.client() as client:
        response = await sign_in(client)
        cookie = _set_cookies(response)["gw_console"]["gw_console"]
        assert cookie["httponly"] is True
        assert cookie["samesite"].lower() == "strict"
        assert cookie["path"] == "/ui"
        assert int(cookie["max-age"]) == sessions.SESSION_TTL_S
        assert not cookie["secure"]  # plain http on loopback
        assert (
            ADMIN_KEY not in cookie.value
            and sessions.signing_key(ADMIN_KEY).hex() not in cookie.value
        )
    # Behind a TLS-terminating proxy: both cookies are Secure.
    async with console_gateway.client(headers={"x-forwarded-proto": "https"}) as client:
        form = await client.get("/ui/login")
        login = _set_cookies(form)["gw_console_login"]["gw_console_login"]
        assert login["secure"] is True and login["httponly"] is True
        response = await client.post(
            "/ui/login",
            data={"admin_key": ADMIN_KEY, "login_token": hidden(form.text, "login_token")},
            headers={"cookie": f"gw_console_login={login.value}"},
        )
        assert _set_cookies(response)["gw_console"]["gw_console"]["secure"] is True


async def test_posts_need_the_sessions_csrf_token(
    console: httpx.AsyncClient, console_gateway: RunningGateway
) -> None:
    csrf = console.csrf  # type: ignore[attr-defined]
    for headers, data in (
        ({}, {"name": "a"}),
        ({"x-csrf-token": "0" * 64}, {"name": "b"}),
        ({}, {"name": "c", "csrf_token": "0" * 64}),
        ({"hx-request": "true"}, {"name": "d"}),
    ):
        response = await console.post("/ui/keys", data=data, headers=headers)
        assert response.status_code == 403, data
    for path in ("/ui/keys/key_x/revoke", "/ui/stores", "/ui/playground/chat", "/ui/logout"):
        assert (await console.post(path, data={"name": "x"})).status_code == 403, path
    upload = await console.post(
        "/ui/stores/vs_x/files", files={"file": ("a.txt", b"hi")}, data={"purpose": "assistants"}
    )
    assert upload.status_code == 403
    assert await _admin_keys(console_gateway) == []
    # Another session's token is no good either.
    async with console_gateway.client() as other:
        await sign_in(other)
        theirs = hidden((await other.get("/ui/keys")).text, "csrf_token")
    assert theirs != csrf
    refused = await console.post("/ui/keys", data={"name": "e"}, headers={"x-csrf-token": theirs})
    assert refused.status_code == 403
    ok = await console.post("/ui/keys", data={"name": "f", "csrf_token": csrf})
    assert ok.status_code == 200 and "Key “f” created" in ok.text


async def test_no_key_is_ever_rendered_but_a_new_one_once(
    console: httpx.AsyncClient, console_gateway: RunningGateway
) -> None:
    csrf = console.csrf  # type: ignore[attr-defined]
    created = await console.post(
        "/ui/keys", data={"name": "once"}, headers={"x-csrf-token": csrf, "hx-request": "true"}
    )
    assert (await _admin_keys(console_gateway))[0]["name"] == "once"
    assert "sk-" in created.text and ADMIN_KEY not in created.text
    new_secret = created.text.split('id="new-key-value" readonly value="')[1].split('"')[0]
    assert created.headers["cache-control"] == "no-store"
    for path in [*PAGES, "/ui/login"]:
        body = (await console.get(path, follow_redirects=True)).text
        assert ADMIN_KEY not in body, path
        assert new_secret not in body, path


async def test_security_headers(console: httpx.AsyncClient) -> None:
    response = await console.get("/ui/keys")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp


async def test_sessions_expire_and_die_with_the_admin_key(
    console_gateway: RunningGateway,
    gateway_factory: GatewayFactory,
    engine: FakeEngine,
    database_url: str,
) -> None:
    signing = sessions.signing_key(ADMIN_KEY)
    _, stale = sessions.issue(signing, time.time() - sessions.SESSION_TTL_S - 1)
    _, fresh = sessions.issue(signing, time.time())
    async with console_gateway.client() as client:
        client.cookies.set("gw_console", stale, path="/ui")
        assert (await client.get("/ui/keys")).status_code == 303
        client.cookies.set("gw_console", fresh + "x", path="/ui")
        assert (await client.get("/ui/keys")).status_code == 303
        client.cookies.set("gw_console", fresh, path="/ui")
        assert (await client.get("/ui/keys")).status_code == 200
    # The same cookie at a gateway whose admin key changed: signed out.
    rotated = await gateway_factory(
        upstreams=[engine.url], database_url=database_url, admin_key=ADMIN_KEY + "-rotated"
    )
    async with rotated.client() as client:
        client.cookies.set("gw_console", fresh, path="/ui")
        assert (await client.get("/ui/keys")).status_code == 303


async def test_sign_out_and_open_redirects(console_gateway: RunningGateway) -> None:
    async with console_gateway.client() as client:
        form = await client.get("/ui/login", params={"next": "https://evil.example/"})
        assert 'name="next" value="/ui/keys"' in form.text
        for target in ("https://evil.example/", "//evil.example/ui/", "/ui/../admin", "/ui/%2e%2e"):
            client.cookies.clear()
            token = hidden((await client.get("/ui/login")).text, "login_token")
            signed = await client.post(
                "/ui/login", data={"admin_key": ADMIN_KEY, "login_token": token, "next": target}
            )
            assert signed.headers["location"] == "/ui/keys", target
        csrf = hidden((await client.get("/ui/keys")).text, "csrf_token")
        out = await client.post("/ui/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert 'gw_console=""' in out.headers["set-cookie"]
        assert (await client.get("/ui/keys")).status_code == 303


async def test_console_is_off_without_an_admin_key(
    gateway_factory: GatewayFactory, engine: FakeEngine
) -> None:
    gw = await gateway_factory(upstreams=[engine.url])
    async with gw.client() as client:
        page = await client.get("/ui/login")
        assert page.status_code == 503 and "GATEWAY_ADMIN_KEY" in page.text
        assert (await client.post("/ui/login", data={"admin_key": ""})).status_code == 503
        assert (await client.get("/ui/keys")).status_code == 303
