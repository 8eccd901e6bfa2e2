"""`/admin/keys`: create, list, read and revoke keys (admin bearer only).

The secret appears in exactly one response, the 201 of its creation. A database outage
is answered as a 503 by the error boundary (gateway.db.outage), not here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from gateway.errors import NeedsDatabase, NotFound
from gateway.http.app_state import attribute
from gateway.keys.require_admin import require_admin
from gateway.keys.schema import KeyCreate, key_view
from gateway.keys.store import KeyStore

log = logging.getLogger("gateway.keys")

router = APIRouter(prefix="/admin/keys", dependencies=[Depends(require_admin)])

NEEDS_DATABASE = (
    "Keys are stored in Postgres: set GATEWAY_DATABASE_URL on the gateway to manage them."
)


@dataclass(frozen=True, slots=True)
class KeyAdmin:
    """What these routes work with, put on `app.state.key_admin` by the app's lifespan."""

    store: KeyStore
    # Drops a key from this process's cache at once: the NOTIFY reaches this replica too,
    # a few ms later, and the next request must not race it.
    invalidate: Callable[[str], None]
    served_id: Callable[[str], str]  # an alias's model, for a key's model list


def key_admin(request: Request) -> KeyAdmin:
    found = attribute(request.app.state, "key_admin", KeyAdmin)
    if found is None:
        raise NeedsDatabase(NEEDS_DATABASE)
    return found


Admin = Annotated[KeyAdmin, Depends(key_admin)]


def _not_found(key_id: str) -> NotFound:
    return NotFound(f"No API key with id '{key_id}'.", param="id", code="key_not_found")


def _now() -> datetime:
    return datetime.now(UTC)


@router.post("", status_code=201)
async def create_key(spec: KeyCreate, admin: Admin) -> dict[str, Any]:
    row, secret = await admin.store.create(spec, admin.served_id)
    admin.invalidate(row.id)
    log.info("api key created", extra={"key_id": row.id, "key_name": row.name})
    return {**key_view(row, _now()), "key": secret}


@router.get("")
async def list_keys(admin: Admin) -> dict[str, Any]:
    rows = await admin.store.list_keys()
    now = _now()
    return {"object": "list", "data": [key_view(row, now) for row in rows]}


@router.get("/{key_id}")
async def get_key(key_id: str, admin: Admin) -> dict[str, Any]:
    row = await admin.store.get(key_id)
    if row is None:
        raise _not_found(key_id)
    return key_view(row, _now())


@router.delete("/{key_id}")
async def revoke_key(key_id: str, admin: Admin) -> dict[str, Any]:
    row = await admin.store.revoke(key_id)
    if row is None:
        raise _not_found(key_id)
    admin.invalidate(key_id)
    log.info("api key revoked", extra={"key_id": key_id})
    return key_view(row, _now())
