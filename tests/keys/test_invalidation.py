"""Cross-replica invalidation: two Authenticators, each with its own cache and listener, on
one database, as two gateway replicas would be."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gateway.errors import AuthenticationError
from tests.admin import admin_headers, create_key
from tests.keys.conftest import KeysApp, start_keys_app, stop_keys_app


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[tuple[KeysApp, KeysApp]]:
    # A long TTL: anything seen below comes from invalidation, not from expiry.
    a = await start_keys_app(database_url, key_cache_ttl_s=3600)
    b = await start_keys_app(database_url, key_cache_ttl_s=3600)
    yield a, b
    await stop_keys_app(a)
    await stop_keys_app(b)


async def _refused_within(replica: KeysApp, secret: str, limit_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        try:
            await replica.auth.check(secret)
        except AuthenticationError:
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"still accepted after {limit_s}s")


async def test_revocation_reaches_the_other_replica_within_a_second(
    replicas: tuple[KeysApp, KeysApp],
) -> None:
    a, b = replicas
    created = await create_key(a.client, "shared")
    assert (await a.auth.check(created.secret)).id == created.id
    assert (await b.auth.check(created.secret)).id == created.id  # now cached on B

    response = await a.client.delete(f"/admin/keys/{created.id}", headers=admin_headers())
    assert response.status_code == 200
    elapsed = await _refused_within(b, created.secret, 1.0)
    assert elapsed < 1.0
    with pytest.raises(AuthenticationError, match="revoked"):
        await a.auth.check(created.secret)


async def test_any_notified_change_is_reloaded(replicas: tuple[KeysApp, KeysApp]) -> None:
    a, b = replicas
    created = await create_key(a.client, "limits", rpm=10)
    assert (await b.auth.check(created.secret)).rpm == 10
    await a.sql(
        "UPDATE api_keys SET rpm = 99 WHERE id = :id",
        "SELECT pg_notify('gateway_keys', :id)",
        id=created.id,
    )
    for _ in range(100):
        if (await b.auth.check(created.secret)).rpm == 99:
            break
        await asyncio.sleep(0.01)
    assert (await b.auth.check(created.secret)).rpm == 99


async def test_a_reconnected_listener_forgets_everything(
    replicas: tuple[KeysApp, KeysApp],
) -> None:
    a, b = replicas
    created = await create_key(a.client, "quiet")
    await b.auth.check(created.secret)
    assert b.auth.listener is not None and b.auth.listener.connections == 1

    # A change nobody announces, then B's listener loses its connection: on reconnecting
    # it cannot know what it missed, so it must drop its cache.
    await a.sql("UPDATE api_keys SET revoked_at = now() WHERE id = :id", id=created.id)
    await a.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
    )
    for _ in range(300):
        if b.auth.listener.connections >= 2 and b.auth.listener.connected:
            break
        await asyncio.sleep(0.01)
    assert b.auth.listener.connections >= 2
    with pytest.raises(AuthenticationError, match="revoked"):
        await b.auth.check(created.secret)
