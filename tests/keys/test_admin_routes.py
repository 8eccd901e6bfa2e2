"""/admin/keys: the key lifecycle, validation and admin auth, against the real Postgres."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.keys.conftest import KeysApp


def _openai_error(body: dict[str, object]) -> dict[str, object]:
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def test_lifecycle_create_list_get_revoke(
    keys_app: KeysApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = await create_key(
        keys_app.client,
        "ci",
        models=["gpt-4o-mini", "other"],
        rpm=60,
        tpm=10_000,
        max_parallel=2,
        daily_tokens=100_000,
        monthly_tokens=2_000_000,
        expires_at=expires.isoformat(),
        metadata={"team": "ml"},
    )
    secret, key_id = created.secret, created.id
    assert secret.startswith("sk-gw-") and key_id.startswith("key_")
    assert created.record["prefix"] == secret[:12] and created.record["owner"] == key_id
    assert created.record["models"] == ["smollm2", "other"]  # aliases resolved at creation
    assert created.record["status"] == "active" and created.record["revoked_at"] is None
    assert datetime.fromisoformat(created.record["expires_at"]) == expires
    assert datetime.fromisoformat(created.record["created_at"]).tzinfo is not None
    assert created.record["metadata"] == {"team": "ml"}

    # The key works on /v1 with the models it was given.
    me = await keys_app.client.get("/v1/whoami", headers={"authorization": f"Bearer {secret}"})
    assert me.json() == {"id": key_id, "models": ["other", "smollm2"]}

    listed = await keys_app.client.get("/admin/keys", headers=admin_headers())
    assert listed.status_code == 200 and listed.json()["object"] == "list"
    assert [k["id"] for k in listed.json()["data"]] == [key_id]
    assert secret not in listed.text and "key" not in listed.json()["data"][0]

    one = await keys_app.client.get(f"/admin/keys/{key_id}", headers=admin_headers())
    assert one.status_code == 200 and one.json()["rpm"] == 60 and secret not in one.text

    revoked = await keys_app.client.delete(f"/admin/keys/{key_id}", headers=admin_headers())
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = await keys_app.client.delete(f"/admin/keys/{key_id}", headers=admin_headers())
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # idempotent

    refused = await keys_app.client.get("/v1/whoami", headers={"x-api-key": secret})
    assert refused.status_code == 401

    assert secret not in caplog.text
    assert key_id in caplog.text  # the id is what the log names


async def test_minimal_key_has_no_limits(keys_app: KeysApp) -> None:
    created = await create_key(keys_app.client, "open")
    for field in ("models", "rpm", "tpm", "max_parallel", "daily_tokens", "expires_at"):
        assert created.record[field] is None
    assert created.record["metadata"] == {}


async def test_unknown_ids_are_404_openai_shaped(keys_app: KeysApp) -> None:
    for method in ("GET", "DELETE"):
        response = await keys_app.client.request(
            method, "/admin/keys/key_nope", headers=admin_headers()
        )
        assert response.status_code == 404
        error = _openai_error(response.json())
        assert error["code"] == "key_not_found" and error["param"] == "id"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "rpm": 0}, "rpm"),
        ({"name": "x", "tpm": -5}, "tpm"),
        ({"name": "x", "daily_tokens": "lots"}, "daily_tokens"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "colour": "blue"}, "colour"),
        ({"models": ["a"]}, "name"),
        ({"name": "x", "models": []}, "models"),
    ],
)
async def test_invalid_bodies_are_400_with_param(
    keys_app: KeysApp, body: dict[str, object], param: str
) -> None:
    response = await keys_app.client.post("/admin/keys", json=body, headers=admin_headers())
    assert response.status_code == 400
    error = _openai_error(response.json())
    assert error["type"] == "invalid_request_error" and error["param"] == param


async def test_admin_routes_need_the_admin_key(keys_app: KeysApp) -> None:
    user = await create_key(keys_app.client, "user")
    cases = [
        ({}, 401),
        ({"authorization": "Basic abc"}, 401),
        ({"authorization": f"Bearer {user.secret}"}, 403),
        ({"authorization": "Bearer sk-gw-wrong"}, 403),
        ({"x-api-key": ADMIN_KEY}, 200),
        ({"api-key": ADMIN_KEY}, 200),
    ]
    for headers, status in cases:
        response = await keys_app.client.get("/admin/keys", headers=headers)
        assert response.status_code == status, (headers, response.text)
        if status != 200:
            _openai_error(response.json())
            assert user.secret not in response.text
