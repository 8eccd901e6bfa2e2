"""`/admin/keys/{id}/end-users`: per-person limits under a trusted front end's key.

    GET    /admin/keys/{id}/end-users               the key's defaults and every override
    GET    /admin/keys/{id}/end-users/{end_user}    what applies to that person now
    PUT    /admin/keys/{id}/end-users/{end_user}    set that person's override
    DELETE /admin/keys/{id}/end-users/{end_user}    back to the key's defaults

An override names only what differs: its unset fields take the key's `end_user_*`
defaults. The end user is named as the gateway records it (the email Open WebUI
forwards, else its user id, else the `user` field).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from gateway.db.models import ApiKey, EndUserLimit
from gateway.errors import InvalidRequest, NotFound
from gateway.keys.end_user_store import EndUserStore
from gateway.keys.end_users import checked_end_user
from gateway.keys.record import EndUserLimits
from gateway.keys.require_admin import require_admin
from gateway.keys.routes import Admin, KeyAdmin
from gateway.keys.schema import Limit32, Limit64
from gateway.keys.store import limits_of, to_record

router = APIRouter(prefix="/admin/keys", dependencies=[Depends(require_admin)])


class EndUserLimitsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: Limit32
    tpm: Limit32
    max_parallel: Limit32
    daily_tokens: Limit64
    monthly_tokens: Limit64


def _limits_view(limits: EndUserLimits) -> dict[str, int | None]:
    return {
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "max_parallel": limits.max_parallel,
        "daily_tokens": limits.daily_tokens,
        "monthly_tokens": limits.monthly_tokens,
    }


def _view(key: ApiKey, end_user: str, row: EndUserLimit | None) -> dict[str, Any]:
    record = to_record(key, [row] if row is not None else [])
    return {
        "object": "end_user",
        "key_id": key.id,
        "end_user": end_user,
        "override": _limits_view(limits_of(row)) if row is not None else None,
        "limits": _limits_view(record.end_user_limits(end_user)),
    }


async def _trusted_key(admin: KeyAdmin, key_id: str) -> ApiKey:
    key = await admin.store.get(key_id)
    if key is None:
        raise NotFound(f"No API key with id '{key_id}'.", param="id", code="key_not_found")
    if not key.trusted_front_end:
        raise InvalidRequest(
            f"Key '{key_id}' is not a trusted front end: its requests name no end users. "
            "Create the key with trusted_front_end=true (gateway keys create "
            "--trusted-front-end).",
            param="id",
            code="not_a_trusted_front_end",
        )
    return key


def _store(admin: KeyAdmin) -> EndUserStore:
    return EndUserStore(admin.store.sessions)


@router.get("/{key_id}/end-users")
async def list_end_users(key_id: str, admin: Admin) -> dict[str, Any]:
    key = await _trusted_key(admin, key_id)
    rows = await _store(admin).list_for(key_id)
    return {
        "object": "list",
        "key_id": key_id,
        "defaults": _limits_view(to_record(key).end_user_defaults),
        "data": [_view(key, row.end_user, row) for row in rows],
    }


@router.get("/{key_id}/end-users/{end_user:path}")
async def get_end_user(key_id: str, end_user: str, admin: Admin) -> dict[str, Any]:
    key = await _trusted_key(admin, key_id)
    end_user = checked_end_user(end_user, "end_user")
    return _view(key, end_user, await _store(admin).get(key_id, end_user))


@router.put("/{key_id}/end-users/{end_user:path}")
async def put_end_user(
    key_id: str, end_user: str, spec: EndUserLimitsSpec, admin: Admin
) -> dict[str, Any]:
    key = await _trusted_key(admin, key_id)
    end_user = checked_end_user(end_user, "end_user")
    limits = EndUserLimits(
        spec.rpm, spec.tpm, spec.max_parallel, spec.daily_tokens, spec.monthly_tokens
    )
    row = await _store(admin).put(key_id, end_user, limits)
    admin.invalidate(key_id)
    return _view(key, end_user, row)


@router.delete("/{key_id}/end-users/{end_user:path}")
async def delete_end_user(key_id: str, end_user: str, admin: Admin) -> dict[str, Any]:
    key = await _trusted_key(admin, key_id)
    end_user = checked_end_user(end_user, "end_user")
    await _store(admin).delete(key_id, end_user)
    admin.invalidate(key_id)
    return _view(key, end_user, None)
