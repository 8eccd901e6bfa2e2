"""Keys, limits, quotas and usage through real gateways: embedded Postgres, real Redis."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import psycopg
import pytest

from gateway.db.url import libpq_url
from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.conftest import GatewayFactory, SdkFactory
from tests.fakes.engine import FakeEngine, free_port
from tests.gateway_process import ProcessFactory

CHAT = "/v1/chat/completions"
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
REDIS = "redis://127.0.0.1:6379/0"


def usage_rows(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(
            "SELECT key_id, status, prompt_tokens, completion_tokens, streamed, cancelled "
            "FROM usage_events ORDER BY id"
        ).fetchall()


async def test_keys_gate_every_v1_route(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str, sdk: SdkFactory
) -> None:
    gw = await keyed_factory()
    key = await create_key(gw)
    assert key.secret.startswith("sk-gw-")
    reply = await sdk(gw, api_key=key.secret).chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    async with gw.client() as client:
        missing = await client.post(CHAT, json=BODY)
        wrong = await client.post(CHAT, json=BODY, headers={"authorization": "Bearer sk-gw-x"})
        models = await client.get("/v1/models")
        azure_style = await client.post(CHAT, json=BODY, headers={"api-key": key.secret})
    for response in (missing, wrong, models):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert azure_style.status_code == 200


async def test_model_allowlist_hides_other_models(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory(model_aliases={"gpt-4o-mini": "fake-model"})
    narrow = await create_key(gw, models=["some-other-model"])
    via_alias = await create_key(gw, models=["gpt-4o-mini"])
    async with gw.client() as client:
        refused = await client.post(CHAT, json=BODY, headers=narrow.headers)
        nonexistent = await client.post(
            CHAT, json={**BODY, "model": "nope"}, headers=narrow.headers
        )
        listed = await client.get("/v1/models", headers=narrow.headers)
        allowed = await client.post(CHAT, json=BODY, headers=via_alias.headers)
        listed_alias = await client.get("/v1/models", headers=via_alias.headers)
    assert refused.status_code == 403
    # Existing or not, a model outside the list looks the same: nothing is revealed.
    assert nonexistent.status_code == 403
    assert listed.json()["data"] == []
    assert allowed.status_code == 200
    assert {m["id"] for m in listed_alias.json()["data"]} == {"fake-model", "gpt-4o-mini"}


@pytest.mark.parametrize("redis_url", [None, REDIS], ids=["memory", "redis"])
async def test_rpm_is_exact_under_concurrency_with_openai_headers(
    engine: FakeEngine,
    keyed_factory: GatewayFactory,
    database_url: str,
    redis_url: str | None,
) -> None:
    gw = await keyed_factory(redis_url=redis_url)
    key = await create_key(gw, rpm=5, tpm=100_000)
    async with gw.client(headers=key.headers) as client:
        responses = await asyncio.gather(*(client.post(CHAT, json=BODY) for _ in range(8)))
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert (len(ok), len(limited)) == (5, 3)
    assert ok[0].headers["x-ratelimit-limit-requests"] == "5"
    assert ok[0].headers["x-ratelimit-limit-tokens"] == "100000"
    assert "x-ratelimit-reset-requests" in ok[0].headers
    error = limited[0].json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    # 5 per minute refill one every 12 s: the real wait, not a constant.
    assert 1 <= int(limited[0].headers["retry-after"]) <= 12


async def test_rpm_is_shared_by_two_replicas_through_redis(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    first = await keyed_factory(redis_url=REDIS)
    second = await keyed_factory(redis_url=REDIS)
    key = await create_key(first, rpm=10)
    async with first.client(headers=key.headers) as a, second.client(headers=key.headers) as b:
        responses = await asyncio.gather(*(client.post(CHAT, json=BODY) for client in [a, b] * 8))
    assert sum(r.status_code == 200 for r in responses) == 10
    assert sum(r.status_code == 429 for r in responses) == 6


async def test_streamed_responses_carry_rate_limit_headers_and_are_metered(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = await create_key(gw, tpm=1000)
    async with gw.client(headers=key.headers) as client:
        streamed = await client.post(CHAT, json={**BODY, "stream": True})
        plain = await client.post(CHAT, json=BODY)
    assert (streamed.status_code, plain.status_code) == (200, 200)
    assert streamed.headers["x-ratelimit-limit-tokens"] == "1000"
    assert "x-ratelimit-remaining-tokens" in plain.headers
    await gw.storage.usage.flush()
    rows = usage_rows(database_url)
    # Streamed and non-streamed requests count alike: vLLM's usage, 7 prompt + 3 completion.
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [(200, 7, 3, True), (200, 7, 3, False)]
    # The token bucket was reconciled to the 10 tokens really used, not the reservation.
    async with gw.client(headers=key.headers) as client:
        after = await client.post(CHAT, json={**BODY, "max_tokens": 5})
    remaining = int(after.headers["x-ratelimit-remaining-tokens"])
    assert remaining >= 1000 - 20 - 30  # two requests of 10, this one's reservation


async def test_in_flight_slot_is_released_when_the_client_leaves(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = await create_key(gw, max_parallel=1)
    engine.behaviour.chunks = 100
    engine.behaviour.chunk_delay = 0.05
    async with gw.client(headers=key.headers) as client:
        async with client.stream("POST", CHAT, json={**BODY, "stream": True}) as response:
            async for _ in response.aiter_bytes():
                break
            busy = await client.post(CHAT, json=BODY)
        await asyncio.sleep(0.3)
        engine.behaviour.chunks = 2
        engine.behaviour.chunk_delay = 0
        free = await client.post(CHAT, json=BODY)
    assert busy.status_code == 429
    assert free.status_code == 200
    await gw.storage.usage.flush()
    cancelled = [r for r in usage_rows(database_url) if r[5]]
    assert len(cancelled) == 1 and cancelled[0][3] >= 1  # chunks stand in for tokens


async def test_daily_quota_is_insufficient_quota(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = await create_key(gw, daily_tokens=15)
    async with gw.client(headers=key.headers) as client:
        first = await client.post(CHAT, json=BODY)
        second = await client.post(CHAT, json=BODY)
        third = await client.post(CHAT, json=BODY)
    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 429
    error = third.json()["error"]
    assert error["code"] == "insufficient_quota" and "daily" in error["message"]


async def test_revocation_reaches_another_replica_within_a_second(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    first = await keyed_factory()
    second = await keyed_factory()
    key = await create_key(first)
    async with second.client(headers=key.headers) as client:
        assert (await client.post(CHAT, json=BODY)).status_code == 200  # now cached there
        async with first.client(headers=admin_headers()) as admin:
            assert (await admin.delete(f"/admin/keys/{key.id}")).status_code == 200
        revoked_at = time.monotonic()
        while (await client.post(CHAT, json=BODY)).status_code == 200:
            assert time.monotonic() - revoked_at < 1.0, "revocation not seen within 1 s"
            await asyncio.sleep(0.05)
        response = await client.post(CHAT, json=BODY)
    assert response.status_code == 401


async def test_redis_outage_falls_back_to_local_limits(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    key = await create_key(gw, rpm=3)
    async with gw.client(headers=key.headers) as client:
        statuses = [(await client.post(CHAT, json=BODY)).status_code for _ in range(4)]
        # /readyz's details are the admin's
        ready = (await client.get("/readyz", headers=admin_headers())).json()
    assert statuses == [200, 200, 200, 429]  # still limited, per process
    assert ready["limiter"] == "memory"


async def test_n_requests_then_sigterm_gives_n_usage_events(
    engine: FakeEngine, database_url: str, gateway_process: ProcessFactory
) -> None:
    gw = await gateway_process(
        {
            "GATEWAY_UPSTREAMS": engine.url,
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_ADMIN_KEY": ADMIN_KEY,
            # A long flush interval: only the shutdown flush can have written the events.
            "GATEWAY_USAGE_FLUSH_INTERVAL_S": "300",
        },
        ready_path="/readyz",
    )
    headers = (await create_key(gw, "n")).headers
    async with gw.client() as client:
        n = 25
        results = await asyncio.gather(
            *(
                client.post(CHAT, json={**BODY, "stream": i % 2 == 0}, headers=headers)
                for i in range(n)
            )
        )
    assert all(r.status_code == 200 for r in results)
    assert usage_rows(database_url) == []
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert await gw.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    rows = usage_rows(database_url)
    assert len(rows) == n
    assert all(r[1] == 200 and r[2] == 7 and r[3] == 3 for r in rows)
