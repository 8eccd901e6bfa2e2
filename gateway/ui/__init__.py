"""The operator console at `/ui`: server-rendered pages (Jinja2 + htmx, uPlot charts).

It signs in with the admin key and then reads and changes everything through the
gateway's own public API (`/admin/*`, `/v1/*`), called in-process through the full ASGI
stack, so the console can do nothing a script could not.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from gateway.ui.render import STATIC
from gateway.ui.routes import router
from gateway.ui.web import HANDLERS


def install(api: FastAPI, public_app: Any) -> None:
    """Add the console to `api`; `public_app` is the full stack its API calls go through."""
    api.state.console_app = public_app
    api.include_router(router)
    api.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    for exc_class, handler in HANDLERS.items():
        api.add_exception_handler(exc_class, handler)


__all__ = ["install"]
