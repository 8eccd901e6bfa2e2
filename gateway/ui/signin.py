"""Signing in with the admin key, and out again.

The key typed into the form is compared (in constant time) with `GATEWAY_ADMIN_KEY` and
forgotten: the session cookie proves it was known, it does not carry it. The form itself
is CSRF-protected by a pre-session cookie, so no other site can sign a browser in.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.keys.admin import is_admin_key
from gateway.ui import session as sessions
from gateway.ui.render import html
from gateway.ui.web import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Posted,
    SignInRequired,
    admin_key,
    base_path,
    clear_cookie,
    read_form,
    redirect,
    safe_next,
    set_cookie,
    signed_in_session,
)

router = APIRouter()


def _form(request: Request, status: int = 200, error: str | None = None) -> Response:
    base = base_path(request)
    key = admin_key(request)
    if not key:
        return html("signin.html", 503, base=base, disabled=True)
    signing = sessions.signing_key(key)
    login, cookie = sessions.issue_login(signing, time.time())
    response = html(
        "signin.html",
        status,
        base=base,
        login_token=sessions.login_token(signing, login),
        next=safe_next(request.query_params.get("next"), base),
        error=error,
    )
    set_cookie(response, request, LOGIN_COOKIE, cookie, sessions.LOGIN_TTL_S)
    return response


@router.get("/ui/login", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> Response:
    try:
        signed_in_session(request)
    except SignInRequired:
        return _form(request)
    return redirect(base_path(request) + "/keys")


@router.post("/ui/login", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    key = admin_key(request)
    if not key:
        return _form(request)
    signing = sessions.signing_key(key)
    form = await read_form(request)
    now = time.time()
    login = sessions.verify_login(signing, request.cookies.get(LOGIN_COOKIE), now)
    if login is None or not sessions.login_token_ok(signing, login, form.get("login_token")):
        return _form(request, 403, "The sign-in form expired or came from another site: retry.")
    if not is_admin_key(key, form.get("admin_key", "").strip()):
        return _form(request, 401, "That is not the admin key (GATEWAY_ADMIN_KEY).")
    _, cookie = sessions.issue(signing, now)
    response = redirect(safe_next(form.get("next"), base_path(request)))
    set_cookie(response, request, SESSION_COOKIE, cookie, sessions.SESSION_TTL_S)
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


@router.post("/ui/logout")
async def sign_out(request: Request, console: Posted) -> Response:
    response = redirect(console.base + "/login")
    clear_cookie(response, request, SESSION_COOKIE)
    return response
