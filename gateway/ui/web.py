"""The console's request plumbing: session cookies, the signed-in check, CSRF, forms.

Every console page depends on `console` (a valid session, else a redirect to sign-in);
every state-changing request depends on `console_post`, which also checks the session's
CSRF token (header `x-csrf-token`, sent by htmx, or a `csrf_token` form field).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.http.app_state import settings_of
from gateway.ui import session as sessions
from gateway.ui.client import GatewayAPI

R = TypeVar("R", bound=Response)

SESSION_COOKIE = "gw_console"
LOGIN_COOKIE = "gw_console_login"
CSRF_HEADER = "x-csrf-token"
# The cap on a console request's body (forms), enforced at the door by gateway.http.body_limit.
MAX_FORM_BYTES = 256 * 1024

# No caching (pages may hold a new key), no framing, and scripts only from the console.
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}


class SignInRequired(Exception):
    """No valid session: back to the sign-in page (or, for htmx, a full-page redirect)."""


class CsrfRejected(Exception):
    """A POST without this session's CSRF token."""


def base_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") + "/ui"


def admin_key(request: Request) -> str | None:
    configured = settings_of(request).admin_key
    return configured.get_secret_value() if configured else None


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip().lower() == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=base_path(request),
        secure=is_https(request),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=base_path(request), secure=is_https(request), httponly=True, samesite="strict"
    )


def secure(response: R) -> R:
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, status_code=303))


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


@dataclass(slots=True)
class Console:
    """A signed-in request: its session, its CSRF token, the gateway's public API."""

    request: Request
    session: sessions.Session
    csrf: str
    api: GatewayAPI
    base: str


def signed_in_session(request: Request) -> tuple[bytes, sessions.Session]:
    key = admin_key(request)
    if not key:
        raise SignInRequired
    signing = sessions.signing_key(key)
    found = sessions.verify(signing, request.cookies.get(SESSION_COOKIE), time.time())
    if found is None:
        raise SignInRequired
    return signing, found


async def console(request: Request) -> AsyncIterator[Console]:
    signing, found = signed_in_session(request)
    key = admin_key(request)
    assert key is not None
    timeout = settings_of(request).read_timeout_s
    api = GatewayAPI(request.app.state.console_app, key, timeout)
    async with api:
        yield Console(request, found, sessions.csrf_token(signing, found), api, base_path(request))


class Form:
    """An urlencoded form: `get` for one field, `getall` for checkboxes."""

    def __init__(self, fields: dict[str, list[str]] | None = None) -> None:
        self._fields = fields or {}

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[0] if values else default

    def getall(self, name: str) -> list[str]:
        return list(self._fields.get(name, []))


async def read_form(request: Request) -> Form:
    """The request's urlencoded body (Starlette caches it, so reading twice is free); the
    body limit has already refused anything over MAX_FORM_BYTES before it got here."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return Form()
    body = await request.body()
    return Form(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))


async def console_post(
    request: Request, signed_in: Annotated[Console, Depends(console)]
) -> Console:
    signing = sessions.signing_key(admin_key(request) or "")
    presented = request.headers.get(CSRF_HEADER) or (await read_form(request)).get("csrf_token")
    if not sessions.csrf_ok(signing, signed_in.session, presented):
        raise CsrfRejected
    return signed_in


SignedIn = Annotated[Console, Depends(console)]
Posted = Annotated[Console, Depends(console_post)]


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    login = base_path(request) + "/login"
    if is_htmx(request):
        return secure(Response(status_code=401, headers={"hx-redirect": login}))
    if request.method == "GET":
        login += "?next=" + quote(request.url.path, safe="/")
    return redirect(login)


async def _csrf_rejected(request: Request, exc: Exception) -> Response:
    message = "This form is stale or came from another site: reload the page and try again."
    return secure(HTMLResponse(f"<p role='alert'>{message}</p>", status_code=403))


def safe_next(value: str | None, base: str) -> str:
    """Only a path inside the console: never an open redirect."""
    if (
        value
        and value.startswith(base + "/")
        and not any(bad in value for bad in ("//", "\\", "/.", "%", "?", "#"))
    ):
        return value
    return base + "/keys"


HANDLERS: dict[type[Exception], Any] = {
    SignInRequired: _sign_in_required,
    CsrfRejected: _csrf_rejected,
}
