"""Keys: list, create (the secret is shown once, in the creation's answer), revoke.

All through `/admin/keys`. Limits are set when a key is created: the admin API has no
update, so changing a key's limits means creating a new one and revoking the old. A
trusted front end's people have their own page (gateway.ui.end_users).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.ui.client import ApiError
from gateway.ui.render import page
from gateway.ui.web import Console, Form, Posted, SignedIn, is_htmx, read_form

router = APIRouter()

LIMITS = (
    ("rpm", "Requests per minute"),
    ("tpm", "Tokens per minute"),
    ("max_parallel", "Requests in flight"),
    ("daily_tokens", "Tokens per UTC day"),
    ("monthly_tokens", "Tokens per UTC month"),
)


class FormError(ValueError):
    pass


def whole_numbers(
    form: Form, fields: tuple[tuple[str, str], ...], prefix: str = ""
) -> dict[str, int]:
    """The filled-in limit fields as numbers (`prefix` + field in the form); FormError on
    what the browser let by."""
    found: dict[str, int] = {}
    for field, label in fields:
        raw = form.get(prefix + field).strip().replace(",", "").replace("_", "")
        if not raw:
            continue
        if not raw.isdigit() or int(raw) < 1:
            raise FormError(f"{label} must be a whole number above zero, or empty.")
        found[field] = int(raw)
    return found


def key_spec(form: Form) -> dict[str, Any]:
    """The form as a `POST /admin/keys` body; raises FormError on what the browser let by."""
    name = form.get("name").strip()
    if not name:
        raise FormError("Give the key a name.")
    spec: dict[str, Any] = {"name": name}
    models = [m for m in form.getall("models") if m.strip()]
    if models:
        spec["models"] = models
    spec.update(whole_numbers(form, LIMITS))
    per_person = whole_numbers(form, LIMITS, "end_user_")
    if form.get("trusted_front_end"):
        spec["trusted_front_end"] = True
        spec.update({f"end_user_{field}": value for field, value in per_person.items()})
    elif per_person:
        raise FormError("Limits per end user need “Trusted front end” ticked.")
    expires = form.get("expires_on").strip()
    if expires:
        spec["expires_at"] = f"{expires}T00:00:00Z"
    return spec


async def _listing(console: Console) -> tuple[list[dict[str, Any]], list[str], str | None]:
    keys: list[dict[str, Any]] = []
    models: list[str] = []
    error = None
    try:
        keys = (await console.api.get("/admin/keys"))["data"]
        models = sorted(m["id"] for m in (await console.api.get("/v1/models"))["data"])
    except ApiError as exc:
        error = exc.message
    keys.sort(key=lambda k: (k["status"] != "active", k.get("created_at") or ""))
    return keys, models, error


@router.get("/ui/keys", response_class=HTMLResponse)
async def keys_page(console: SignedIn) -> Response:
    keys, models, error = await _listing(console)
    return page(console, "keys.html", nav="keys", keys=keys, models=models, error=error)


@router.post("/ui/keys", response_class=HTMLResponse)
async def create_key(console: Posted) -> Response:
    form = await read_form(console.request)
    created: dict[str, Any] | None = None
    problem = None
    try:
        created = await console.api.post("/admin/keys", key_spec(form))
    except (FormError, ApiError) as exc:
        problem = exc.message if isinstance(exc, ApiError) else str(exc)
    keys, models, error = await _listing(console)
    context: dict[str, Any] = {
        "keys": keys,
        "models": models,
        "created": created,
        "problem": problem,
    }
    if is_htmx(console.request):
        return page(console, "keys_created.html", status=200, **context)
    return page(console, "keys.html", nav="keys", error=error, **context)


@router.post("/ui/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(key_id: str, console: Posted) -> Response:
    problem = None
    try:
        await console.api.delete(f"/admin/keys/{quote(key_id, safe='')}")
    except ApiError as exc:
        problem = exc.message
    keys, models, error = await _listing(console)
    if is_htmx(console.request):
        return page(console, "keys_table.html", keys=keys, problem=problem or error)
    return page(console, "keys.html", nav="keys", keys=keys, models=models, problem=problem)
