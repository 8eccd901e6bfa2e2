"""`/admin/adapters`: LoRA adapters on the engines (admin bearer only).

    GET    /admin/adapters          every adapter: its base model, folder, engines
    POST   /admin/adapters          {"name", "path", "base_model"}: load it on every engine
                                    serving base_model; 201 with the adapter
    DELETE /admin/adapters/{name}   unload it everywhere

A collection of its own rather than `/admin/engines/{engine}/adapters`: engines have no
name but their URL, and an adapter belongs to a base model, not to one replica of it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from gateway.http.context import get_context
from gateway.keys.require_admin import require_admin
from gateway.state import StateDep
from gateway.upstream.adapters.spec import AdapterSpec

router = APIRouter(prefix="/admin/adapters", dependencies=[Depends(require_admin)])


@router.get("")
async def list_adapters(state: StateDep) -> dict[str, Any]:
    return {"object": "list", "data": await state.adapters.listing()}


@router.post("", status_code=201)
async def load_adapter(spec: AdapterSpec, request: Request, state: StateDep) -> dict[str, Any]:
    return await state.adapters.load(spec, get_context(request.scope).request_id)


# Adapter names, like model ids, may hold slashes.
@router.delete("/{name:path}")
async def unload_adapter(name: str, request: Request, state: StateDep) -> dict[str, Any]:
    return await state.adapters.unload(name, get_context(request.scope).request_id)
