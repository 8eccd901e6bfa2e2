"""End users behind one key: Open WebUI's forwarded identity, per-person limits and usage.

Real gateways on loopback, the embedded Postgres and the real Redis; requests carry the
headers Open WebUI sends (backend/open_webui/utils/headers.py, routers/openai.py) with
ENABLE_FORWARD_USER_INFO_HEADERS=true, or its signed token when
FORWARD_USER_INFO_HEADER_JWT_SECRET is set.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import quote

import jwt
import psycopg
import pytest

from gateway.db.url import libpq_url
from tests.admin import admin_headers, create_key
from tests.api.test_keys_limits_usage import BODY, CHAT, REDIS
from tests.conftest import GatewayFactory, RunningGateway, SdkFactory

JWT_SECRET = "open-webui-forwarding-secret-for-tests"


def open_webui_headers(
    secret: str, user_id: str, email: str, name: str, *, chat: str | None = None
) -> dict[str, str]:
    """What Open WebUI's get_headers_and_cookies sends to an OpenAI connection with the key
    `secret`."""
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {secret}",
        "X-OpenWebUI-User-Name": quote(name, safe=" "),
        "X-OpenWebUI-User-Id": user_id,
        "X-OpenWebUI-User-Email": email,
        "X-OpenWebUI-User-Role": "user",
    }
    if chat is not None:
        headers["X-OpenWebUI-Chat-Id"] = chat
    return headers


def open_webui_jwt(
    user_id: str, email: str, name: str, *, secret: str = JWT_SECRET, ttl: int = 300
) -> str:
    """Open WebUI's _mint_forward_user_jwt."""
    now = int(time.time())
    payload = {
        "sub": user_id,
        "email": email,
        "name": name,
        "role": "user",
        "iss": "open-webui",
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


def end_user_rows(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(
            "SELECT key_id, end_user, status FROM usage_events ORDER BY id"
        ).fetchall()


async def post_chat(gw: RunningGateway, headers: dict[str, str], **body: Any) -> int:
    async with gw.client() as client:
        response = await client.post(CHAT, content=_json({**BODY, **body}), headers=headers)
    return response.status_code


def _json(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)


ALICE = ("3f1c2a9e-1111-4a5b-9c1d-aaaaaaaaaaaa", "alice@example.com", "Alice Ærø")
BOB = ("7b2d4c8f-2222-4e6f-8a9b-bbbbbbbbbbbb", "bob@example.com", "Bob")


@pytest.mark.parametrize("redis_url", [None, REDIS], ids=["memory", "redis"])
async def test_two_open_webui_users_get_their_own_limits_and_usage(
    keyed_factory: GatewayFactory, database_url: str, redis_url: str | None
) -> None:
    gw = await keyed_factory(redis_url=redis_url)
    key = await create_key(gw, trusted_front_end=True, end_user_rpm=2)
    alice = open_webui_headers(key.secret, *ALICE, chat="chat-1")
    bob = open_webui_headers(key.secret, *BOB)
    assert [await post_chat(gw, alice) for _ in range(3)] == [200, 200, 429]
    # Alice's exhausted bucket is hers alone: Bob, behind the same key, is served.
    assert [await post_chat(gw, bob) for _ in range(2)] == [200, 200]
    await gw.storage.usage.flush()
    rows = end_user_rows(database_url)
    assert [(r[1], r[2]) for r in rows] == [
        ("alice@example.com", 200),
        ("alice@example.com", 200),
        ("alice@example.com", 429),  # refusals are recorded too, under the person
        ("bob@example.com", 200),
        ("bob@example.com", 200),
    ]
    assert {r[0] for r in rows} == {key.id}


async def test_the_key_limits_still_bind_its_end_users_together(
    keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = await create_key(gw, trusted_front_end=True, rpm=3, end_user_rpm=2)
    statuses = [
        await post_chat(gw, open_webui_headers(key.secret, str(uuid.uuid4()), f"u{i}@x.org", "U"))
        for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]  # new names never lift the key's own rpm


async def test_an_untrusted_key_cannot_spoof_end_users(
    keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory(end_user_jwt_secret=JWT_SECRET)
    plain = await create_key(gw, rpm=2)
    forged = open_webui_jwt(*ALICE)
    statuses = []
    for i, who in enumerate((ALICE, BOB, ALICE)):
        headers = open_webui_headers(plain.secret, *who)
        headers["X-OpenWebUI-User-Jwt"] = forged
        statuses.append(await post_chat(gw, headers, user=f"someone-{i}"))
    # One bucket for the key whatever the headers say, and no end user on the rows.
    assert statuses == [200, 200, 429]
    await gw.storage.usage.flush()
    assert [r[1:] for r in end_user_rows(database_url)] == [(None, 200), (None, 200), (None, 429)]
    # Nor can it be given end-user limits without being trusted.
    async with gw.client(headers=admin_headers()) as client:
        refused = await client.post("/admin/keys", json={"name": "x", "end_user_rpm": 5})
    assert refused.status_code == 400
    assert "trusted_front_end" in refused.json()["error"]["message"]


async def test_signed_open_webui_token_is_verified(
    keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory(end_user_jwt_secret=JWT_SECRET)
    key = await create_key(gw, trusted_front_end=True)
    base = {"Content-Type": "application/json", "Authorization": f"Bearer {key.secret}"}
    good = {**base, "X-OpenWebUI-User-Jwt": open_webui_jwt(*ALICE), "X-OpenWebUI-Chat-Id": "c"}
    assert await post_chat(gw, good) == 200
    for token in (
        open_webui_jwt(*BOB, secret="another-secret-of-enough-length"),
        open_webui_jwt(*BOB, ttl=-120),  # expired beyond the leeway
        "not.a.token",
    ):
        async with gw.client() as client:
            response = await client.post(
                CHAT, json=BODY, headers={**base, "X-OpenWebUI-User-Jwt": token}
            )
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_end_user_token"
        assert token not in error["message"]
    # With a secret, Open WebUI sends only the token: unsigned headers are not believed.
    assert await post_chat(gw, open_webui_headers(key.secret, *BOB)) == 200
    await gw.storage.usage.flush()
    assert [(r[1], r[2]) for r in end_user_rows(database_url)] == [
        ("alice@example.com", 200),
        (None, 401),
        (None, 401),
        (None, 401),
        (None, 200),
    ]


async def test_the_user_field_names_the_end_user_for_other_apps(
    keyed_factory: GatewayFactory, database_url: str, sdk: SdkFactory
) -> None:
    gw = await keyed_factory()
    key = await create_key(gw, trusted_front_end=True, end_user_rpm=1)
    client = sdk(gw, api_key=key.secret)
    await client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}], user="carol"
    )
    await client.embeddings.create(model="fake-model", input="hi", user="dave")
    async with gw.client() as http:
        again = await http.post(CHAT, json={**BODY, "user": "carol"}, headers=key.headers)
        too_long = await http.post(CHAT, json={**BODY, "user": "x" * 300}, headers=key.headers)
        not_text = await http.post(CHAT, json={**BODY, "user": 42}, headers=key.headers)
    assert again.status_code == 429
    assert again.json()["error"]["message"].startswith("Your own limit as an end user")
    assert again.json()["error"]["code"] == "rate_limit_exceeded" and "retry-after" in again.headers
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "user"
    assert not_text.status_code == 400 and not_text.json()["error"]["param"] == "user"
    await gw.storage.usage.flush()
    assert [(r[1], r[2]) for r in end_user_rows(database_url)] == [
        ("carol", 200),
        ("dave", 200),
        ("carol", 429),
        (None, 400),
        (None, 400),
    ]


async def test_end_user_daily_quota(keyed_factory: GatewayFactory, database_url: str) -> None:
    gw = await keyed_factory()
    key = await create_key(gw, trusted_front_end=True, end_user_daily_tokens=1)
    alice, bob = open_webui_headers(key.secret, *ALICE), open_webui_headers(key.secret, *BOB)
    assert await post_chat(gw, alice) == 200  # uses more than 1 token
    async with gw.client() as client:
        spent = await client.post(CHAT, json=BODY, headers=alice)
    assert spent.status_code == 429
    assert spent.json()["error"]["code"] == "insufficient_quota"
    assert spent.json()["error"]["message"].startswith("As an end user of this key: You exceeded")
    assert await post_chat(gw, bob) == 200


async def test_random_end_user_names_do_not_grow_memory(
    keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory(limiter_max_states=100)
    key = await create_key(gw, trusted_front_end=True, end_user_rpm=5, end_user_daily_tokens=10**9)
    storage = gw.storage
    storage.quotas.max_entries = 100  # the default is 10,000: keep the test short
    async with gw.client() as client:
        for _ in range(300):
            headers = open_webui_headers(
                key.secret, str(uuid.uuid4()), f"{uuid.uuid4()}@x.org", "x"
            )
            response = await client.post(CHAT, json=BODY, headers=headers)
            assert response.status_code == 200
    assert storage.limiter.memory_states <= 100
    assert len(storage.quotas) <= 100


async def test_an_override_changes_one_persons_limits_at_once(
    keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory(redis_url=REDIS)
    key = await create_key(gw, trusted_front_end=True, end_user_rpm=1, end_user_tpm=100_000)
    alice, bob = open_webui_headers(key.secret, *ALICE), open_webui_headers(key.secret, *BOB)
    # The key is cached now: the override below must reach the request path all the same.
    assert [await post_chat(gw, alice) for _ in range(2)] == [200, 429]
    path = f"/admin/keys/{key.id}/end-users/bob@example.com"
    async with gw.client(headers=admin_headers()) as admin:
        put = await admin.put(path, json={"rpm": 3})
        listed = await admin.get(f"/admin/keys/{key.id}/end-users")
        other = await admin.get(f"/admin/keys/{key.id}/end-users/alice@example.com")
        bad = await admin.put(path, json={"rpm": "5"})
        plain = await create_key(gw)
        untrusted = await admin.put(f"/admin/keys/{plain.id}/end-users/x", json={"rpm": 1})
        missing = await admin.put("/admin/keys/key_nope/end-users/x", json={"rpm": 1})
    assert put.status_code == 200
    assert put.json()["override"]["rpm"] == 3
    # Unset fields keep the key's defaults.
    assert put.json()["limits"] == {
        "rpm": 3,
        "tpm": 100_000,
        "max_parallel": None,
        "daily_tokens": None,
        "monthly_tokens": None,
    }
    assert listed.json()["defaults"]["rpm"] == 1
    assert [e["end_user"] for e in listed.json()["data"]] == ["bob@example.com"]
    assert other.json()["override"] is None and other.json()["limits"]["rpm"] == 1
    assert bad.status_code == 400
    assert untrusted.status_code == 400
    assert untrusted.json()["error"]["code"] == "not_a_trusted_front_end"
    assert missing.status_code == 404
    assert [await post_chat(gw, bob) for _ in range(4)] == [200, 200, 200, 429]
    assert await post_chat(gw, alice) == 429  # still the default for her
    async with gw.client(headers=admin_headers()) as admin:
        dropped = await admin.delete(path)
    assert dropped.json()["override"] is None and dropped.json()["limits"]["rpm"] == 1


async def test_usage_report_per_end_user(keyed_factory: GatewayFactory, database_url: str) -> None:
    gw = await keyed_factory()
    key = await create_key(gw, trusted_front_end=True)
    for who, times in ((ALICE, 3), (BOB, 1)):
        for _ in range(times):
            assert await post_chat(gw, open_webui_headers(key.secret, *who)) == 200
    async with gw.client() as client:
        assert (await client.post(CHAT, json=BODY, headers=key.headers)).status_code == 200
    await gw.storage.usage.flush()
    async with gw.client(headers=admin_headers()) as admin:
        report = await admin.get("/admin/usage", params={"key_id": key.id, "group_by": "end_user"})
        no_key = await admin.get("/admin/usage", params={"group_by": "end_user"})
        wrong = await admin.get("/admin/usage", params={"key_id": key.id, "group_by": "x"})
    assert report.status_code == 200, report.text
    body = report.json()
    people = {row["end_user"]: row for row in body["by_end_user"]}
    assert set(people) == {"alice@example.com", "bob@example.com", None}
    assert people["alice@example.com"]["requests"] == 3
    assert people["bob@example.com"]["requests"] == 1
    assert people[None]["requests"] == 1  # the key used without naming anyone
    assert sum(r["total_tokens"] for r in body["by_end_user"]) == body["total_tokens"]
    assert people["alice@example.com"]["total_tokens"] > people["bob@example.com"]["total_tokens"]
    assert no_key.status_code == 400 and no_key.json()["error"]["param"] == "key_id"
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "group_by"
