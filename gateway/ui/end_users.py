"""A trusted front end's people: usage per end user, their limits, and overrides.

From `GET /admin/usage?key_id=...&group_by=end_user` and `/admin/keys/{id}/end-users`,
like any script would: the console reads no table itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.ui.client import ApiError
from gateway.ui.keys import LIMITS, FormError, whole_numbers
from gateway.ui.render import page
from gateway.ui.web import Console, Posted, SignedIn, read_form

router = APIRouter()

WINDOW = timedelta(days=30)


def _path(key_id: str, end_user: str | None = None) -> str:
    path = f"/admin/keys/{quote(key_id, safe='')}/end-users"
    return path if end_user is None else f"{path}/{quote(end_user, safe='@')}"


async def _render(console: Console, key_id: str, problem: str | None = None) -> Response:
    key: dict[str, Any] | None = None
    people: list[dict[str, Any]] = []
    overrides: dict[str, dict[str, Any]] = {}
    defaults: dict[str, Any] = {}
    error = None
    try:
        key = await console.api.get(f"/admin/keys/{quote(key_id, safe='')}")
        if key.get("trusted_front_end"):
            listed = await console.api.get(_path(key_id))
            defaults = listed["defaults"]
            overrides = {o["end_user"]: o for o in listed["data"]}
            since = (datetime.now(UTC) - WINDOW).isoformat()
            report = await console.api.get(
                "/admin/usage", key_id=key_id, group_by="end_user", since=since
            )
            people = report.get("by_end_user", [])
    except ApiError as exc:
        error = exc.message
    seen = {p["end_user"] for p in people}
    # People with an override but no requests in the window still get a row.
    for name in overrides:
        if name not in seen:
            people.append({"end_user": name, "requests": 0, "total_tokens": 0, "last_seen": None})
    for person in people:
        name = person["end_user"]
        person["override"] = overrides.get(name, {}).get("override") if name else None
        person["limits"] = overrides[name]["limits"] if name in overrides else defaults
    return page(
        console,
        "end_users.html",
        nav="keys",
        key=key,
        people=people,
        defaults=defaults,
        limits=LIMITS,
        error=error,
        problem=problem,
    )


@router.get("/ui/keys/{key_id}/end-users", response_class=HTMLResponse)
async def end_users_page(key_id: str, console: SignedIn) -> Response:
    return await _render(console, key_id)


@router.post("/ui/keys/{key_id}/end-users", response_class=HTMLResponse)
async def set_override(key_id: str, console: Posted) -> Response:
    form = await read_form(console.request)
    problem = None
    try:
        end_user = form.get("end_user").strip()
        if not end_user:
            raise FormError("Name the end user (the email Open WebUI forwards, or the id).")
        limits = whole_numbers(form, LIMITS)
        if form.get("remove"):
            await console.api.delete(_path(key_id, end_user))
        else:
            await console.api.call("PUT", _path(key_id, end_user), json=limits)
    except (FormError, ApiError) as exc:
        problem = exc.message if isinstance(exc, ApiError) else str(exc)
    return await _render(console, key_id, problem)
