"""A tiny real app around the keys package: the admin router, an authenticated /v1 route,
the OpenAI error handlers, and on the app's state what these routes read, as the
gateway's lifespan puts it there: the settings and the key admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import Settings
from gateway.db.engine import create_engine, session_factory
from gateway.http import exception_handlers
from gateway.keys.auth import Authenticator
from gateway.keys.routes import KeyAdmin, router
from gateway.keys.store import KeyStore
from gateway.upstream.registry import Registry
from tests.admin import ADMIN_KEY


@dataclass
class KeysApp:
    app: FastAPI
    client: httpx.AsyncClient
    auth: Authenticator
    db: AsyncEngine
    settings: Settings

    async def sql(self, *statements: str, **params: Any) -> None:
        """Statements run in one transaction (a NOTIFY among them is sent on commit)."""
        async with self.db.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement), params)


def make_app(settings: Settings, db: AsyncEngine, auth: Authenticator) -> FastAPI:
    app = FastAPI()
    exception_handlers.install(app)
    app.include_router(router)

    @app.get("/v1/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        record = await auth.authenticate(request.scope)
        return {"id": record.id, "models": sorted(record.models or [])}

    aliases = Registry([], settings.model_aliases)
    app.state.settings = settings
    app.state.key_admin = KeyAdmin(KeyStore(db), auth.invalidate, aliases.served_id)
    return app


async def start_keys_app(database_url: str, **overrides: Any) -> KeysApp:
    settings = Settings(database_url=database_url, admin_key=ADMIN_KEY, **overrides)
    db = create_engine(database_url, pool_size=2)
    auth = Authenticator(settings, session_factory(db))
    await auth.start()
    app = make_app(settings, db, auth)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    return KeysApp(app, client, auth, db, settings)


async def stop_keys_app(keys_app: KeysApp) -> None:
    await keys_app.client.aclose()
    await keys_app.auth.stop()
    await keys_app.db.dispose()


@pytest.fixture
async def keys_app(database_url: str) -> AsyncIterator[KeysApp]:
    started = await start_keys_app(database_url, model_aliases={"gpt-4o-mini": "smollm2"})
    yield started
    await stop_keys_app(started)
