"""Authentication on /v1: every failure shape, the accepted headers, the admin key, caching."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import Settings
from gateway.db.engine import create_engine, session_factory
from gateway.errors import AuthenticationError
from gateway.keys.auth import ADMIN, Authenticator
from gateway.keys.schema import KeyCreate
from gateway.keys.tokens import generate_secret
from gateway.metrics import Metrics
from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.keys.conftest import KeysApp


async def _refused(keys_app: KeysApp, headers: dict[str, str], message: str) -> None:
    response = await keys_app.client.get("/v1/whoami", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json() == {
        "error": {
            "message": response.json()["error"]["message"],
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert response.json()["error"]["message"].startswith(message)
    assert response.headers["x-should-retry"] == "false"
    for value in headers.values():
        token = value.split()[-1]
        if token != "Bearer":
            assert token not in response.text and token[-6:] not in response.text  # no echo


async def test_every_failure_is_a_401_in_openai_shape(
    keys_app: KeysApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    expired = await create_key(keys_app.client, "old")
    revoked = await create_key(keys_app.client, "gone")
    await keys_app.sql(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id",
        id=expired.id,
    )
    keys_app.auth.invalidate(expired.id)  # direct SQL sends no NOTIFY
    await keys_app.client.delete(f"/admin/keys/{revoked.id}", headers=admin_headers())

    await _refused(keys_app, {}, "You didn't provide an API key")
    await _refused(keys_app, {"authorization": "Bearer"}, "You didn't provide an API key")
    await _refused(keys_app, {"authorization": "Basic dXNlcjpwdw=="}, "You didn't provide")
    await _refused(keys_app, {"authorization": f"Bearer {generate_secret()}"}, "Incorrect API key")
    await _refused(keys_app, {"authorization": "Bearer sk-proj-abcdef123456"}, "Incorrect API key")
    await _refused(keys_app, {"authorization": f"Bearer {expired.secret}"}, "This API key has exp")
    await _refused(keys_app, {"authorization": f"Bearer {revoked.secret}"}, "This API key has bee")
    for secret in (expired.secret, revoked.secret):
        assert secret not in caplog.text


async def test_keys_arrive_in_any_of_three_headers(keys_app: KeysApp) -> None:
    created = await create_key(keys_app.client, "h")
    for name in ("authorization", "api-key", "x-api-key"):
        value = f"Bearer {created.secret}" if name == "authorization" else created.secret
        response = await keys_app.client.get("/v1/whoami", headers={name: value})
        assert response.status_code == 200 and response.json()["id"] == created.id, name


async def test_admin_key_is_an_unlimited_admin_record_on_v1(keys_app: KeysApp) -> None:
    response = await keys_app.client.get(
        "/v1/whoami", headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert response.status_code == 200 and response.json()["id"] == "admin"
    assert await keys_app.auth.check(ADMIN_KEY) is ADMIN
    assert ADMIN.models is None and ADMIN.rpm is None and ADMIN.daily_tokens is None


async def test_known_and_unknown_keys_are_cached(database_url: str) -> None:
    metrics = Metrics()
    settings = Settings(database_url=database_url, key_cache_ttl_s=60)
    db = create_engine(database_url, pool_size=2)
    auth = Authenticator(settings, session_factory(db), metrics)
    try:
        row, secret = await auth.store.create(KeyCreate.model_validate({"name": "c"}), lambda m: m)

        def count(result: str) -> float:
            value = metrics.registry.get_sample_value(
                "gateway_key_lookups_total", {"result": result}
            )
            return value or 0.0

        for _ in range(5):
            assert (await auth.check(secret)).id == row.id
        assert (count("db"), count("hit")) == (1, 4)

        # A burst of one wrong key: one query, the rest wait on it or hit the negative entry.
        wrong = generate_secret()
        results = await asyncio.gather(
            *(auth.check(wrong) for _ in range(50)), return_exceptions=True
        )
        assert all(isinstance(r, AuthenticationError) for r in results)
        assert count("db") == 2
        with pytest.raises(AuthenticationError):
            await auth.check(wrong)
        assert count("negative") >= 1 and count("db") == 2

        # Obviously foreign strings never reach the cache or the database.
        with pytest.raises(AuthenticationError):
            await auth.check("sk-" + "x" * 48)
        assert count("malformed") == 1 and count("db") == 2
    finally:
        await auth.stop()
        await db.dispose()


async def test_expiry_is_checked_on_every_request_not_only_on_load(database_url: str) -> None:
    settings = Settings(database_url=database_url, key_cache_ttl_s=600)
    db = create_engine(database_url, pool_size=2)
    clock = [datetime.now(UTC)]
    auth = Authenticator(settings, session_factory(db), wall=lambda: clock[0])
    try:
        spec = KeyCreate.model_validate({"name": "e", "expires_at": clock[0] + timedelta(hours=1)})
        _, secret = await auth.store.create(spec, lambda m: m)
        await auth.check(secret)
        clock[0] += timedelta(hours=2)  # cached, yet past its expiry
        with pytest.raises(AuthenticationError, match="expired"):
            await auth.check(secret)
    finally:
        await db.dispose()
