"""Every console route under `/ui`, in one router."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.ui import end_users, engines, evals, keys, playground, signin, stores, usage
from gateway.ui.web import base_path, redirect

router = APIRouter(include_in_schema=False)
for _module in (signin, keys, end_users, usage, engines, stores, evals, playground):
    router.include_router(_module.router)


@router.get("/ui")
@router.get("/ui/")
async def home(request: Request) -> Response:
    # Signed out, the keys page sends the browser on to sign in.
    return redirect(base_path(request) + "/keys")
