"""A database outage, for real: a Postgres of this test's own, stopped and started again.

Cached keys keep working up to `db_outage_grace_s` past their TTL; unknown keys get 503
(not 401: a client told its valid key is wrong throws it away); after the restart the
listener reconnects and the gateway heals by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from gateway.config import Settings
from gateway.db.engine import create_engine, session_factory
from gateway.db.migrate import upgrade
from gateway.errors import AuthenticationError, DatabaseUnavailable
from gateway.keys.auth import Authenticator
from gateway.keys.schema import KeyCreate
from gateway.keys.tokens import generate_secret
from tests.admin import ADMIN_KEY, admin_headers
from tests.keys.conftest import make_app
from tests.postgres import new_server, stop_server

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    server = new_server()
    upgrade(server.get_uri())
    yield server
    server.cleanup()


async def listening(auth: Authenticator) -> int:
    """Once the key listener is connected: the cache's generation (one more per NOTIFY)."""
    assert auth.listener is not None
    for _ in range(200):
        if auth.listener.connected:
            return auth.cache.generation
        await asyncio.sleep(0.05)
    raise AssertionError("the key listener did not connect")


async def notified(auth: Authenticator, generation: int) -> None:
    for _ in range(200):
        if auth.cache.generation >= generation:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the creations' NOTIFYs did not arrive")


async def test_cached_keys_survive_an_outage_and_unknown_keys_get_503(
    own_pg: PostgresServer,
) -> None:
    url = own_pg.get_uri()
    settings = Settings(database_url=url, key_cache_ttl_s=60, db_outage_grace_s=600)
    db = create_engine(url, pool_size=2)
    now = [1000.0]  # a fake monotonic clock: TTL and grace without waiting for them
    auth = Authenticator(settings, session_factory(db), clock=lambda: now[0])
    await auth.start()
    app = make_app(settings, db, auth)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    try:
        seen = await listening(auth)
        known_row, known = await auth.store.create(
            KeyCreate.model_validate({"name": "known"}), lambda m: m
        )
        _, uncached = await auth.store.create(
            KeyCreate.model_validate({"name": "uncached"}), lambda m: m
        )
        # A lookup racing a creation's NOTIFY is rightly not cached: let both arrive first.
        await notified(auth, seen + 2)
        assert (await auth.check(known)).id == known_row.id

        await asyncio.to_thread(stop_server, own_pg)

        now[0] += 30  # fresh: no query at all
        assert (await auth.check(known)).id == known_row.id
        now[0] += 100  # past the TTL, within the grace: the failed refresh falls back
        assert (await auth.check(known)).id == known_row.id
        for secret in (uncached, generate_secret()):
            with pytest.raises(DatabaseUnavailable):
                await auth.check(secret)
        with pytest.raises(AuthenticationError):  # cannot be a key: no database needed
            await auth.check("not-a-gateway-key")

        response = await client.get("/v1/whoami", headers={"authorization": f"Bearer {uncached}"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        assert response.json()["error"]["type"] == "server_error"
        assert uncached not in response.text
        response = await client.get("/admin/keys", headers={"x-api-key": "x"})
        assert response.status_code == 403  # admin check needs no database

        now[0] += 600  # past TTL + grace: a cached key is no longer trusted blindly
        with pytest.raises(DatabaseUnavailable):
            await auth.check(known)

        await asyncio.to_thread(own_pg.ensure_postgres_running)
        assert auth.listener is not None
        for _ in range(1000):  # reconnect backoff is at most 5 s
            if auth.listener.connections >= 2:
                break
            await asyncio.sleep(0.01)
        assert auth.listener.connections >= 2, "listener did not reconnect"
        now[0] += 2  # past the fail-fast window after the last failed query
        assert (await auth.check(uncached)).name == "uncached"
        assert (await auth.check(known)).id == known_row.id
    finally:
        await client.aclose()
        await auth.stop()
        await db.dispose()


async def test_admin_api_reports_an_unreachable_database_as_503(own_pg: PostgresServer) -> None:
    url = own_pg.get_uri()
    settings = Settings(database_url=url, admin_key=ADMIN_KEY)
    db = create_engine(url, pool_size=1)
    auth = Authenticator(settings, session_factory(db))
    app = make_app(settings, db, auth)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    try:
        await asyncio.to_thread(stop_server, own_pg)
        headers = admin_headers()
        for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys")):
            response = await client.request(method, path, headers=headers, json={"name": "n"})
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "database_unavailable"
    finally:
        await client.aclose()
        await db.dispose()
        await asyncio.to_thread(own_pg.ensure_postgres_running)
