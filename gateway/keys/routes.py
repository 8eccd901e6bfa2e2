"""`/admin/keys`: create, list, read and revoke keys (admin bearer only).

The secret appears in exactly one response, the 201 of its creation. A database outage
is answered as a 503 by the error boundary (gateway.db.outage), not here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request

from gateway.errors import DatabaseUnavailable, NotFound
from gateway.keys.admin import require_admin
from gateway.keys.schema import KeyCreate, key_view
from gateway.keys.store import KeyStore

log = logging.getLogger("gateway.keys")

router = APIRouter(prefix="/admin/keys", dependencies=[Depends(require_admin)])


def _store(request: Request) -> KeyStore:
    services = request.app.state.services
    if getattr(services, "sessions", None) is None:
        raise DatabaseUnavailable(
            "Keys are stored in Postgres: set GATEWAY_DATABASE_URL on the gateway to manage them."
        )
    return KeyStore(services.sessions)


def _resolver(request: Request) -> Callable[[str], str]:
    services = request.app.state.services
    registry = getattr(services, "registry", None)
    if registry is not None:
        return registry.served_id  # type: ignore[no-any-return]
    aliases: dict[str, str] = services.settings.model_aliases
    return lambda model: aliases.get(model, model)


def _invalidate_here(request: Request, key_id: str) -> None:
    # The NOTIFY reaches this replica too, a few ms later; don't let the next request race it.
    keys = getattr(request.app.state.services, "keys", None)
    if keys is not None:
        keys.invalidate(key_id)


def _not_found(key_id: str) -> NotFound:
    return NotFound(f"No API key with id '{key_id}'.", param="id", code="key_not_found")


def _now() -> datetime:
    return datetime.now(UTC)


@router.post("", status_code=201)
async def create_key(spec: KeyCreate, request: Request) -> dict[str, Any]:
    store = _store(request)
    row, secret = await store.create(spec, _resolver(request))
    _invalidate_here(request, row.id)
    log.info("api key created", extra={"key_id": row.id, "key_name": row.name})
    return {**key_view(row, _now()), "key": secret}


@router.get("")
async def list_keys(request: Request) -> dict[str, Any]:
    store = _store(request)
    rows = await store.list_keys()
    now = _now()
    return {"object": "list", "data": [key_view(row, now) for row in rows]}


@router.get("/{key_id}")
async def get_key(key_id: str, request: Request) -> dict[str, Any]:
    store = _store(request)
    row = await store.get(key_id)
    if row is None:
        raise _not_found(key_id)
    return key_view(row, _now())


@router.delete("/{key_id}")
async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
    store = _store(request)
    row = await store.revoke(key_id)
    if row is None:
        raise _not_found(key_id)
    _invalidate_here(request, key_id)
    log.info("api key revoked", extra={"key_id": key_id})
    return key_view(row, _now())
