"""End users behind one key against real vLLM on the CPU: Open WebUI's forwarded headers
(streamed, as Open WebUI asks) and another app's `user` field, which vLLM accepts."""

from __future__ import annotations

import psycopg

from gateway.db.url import libpq_url
from gateway.local.engine import Engine
from tests.admin import ADMIN_KEY, create_key
from tests.api.test_end_users import ALICE, BOB, open_webui_headers
from tests.conftest import GatewayFactory

ASK = [{"role": "user", "content": "Name one colour."}]


async def test_open_webui_users_metered_and_limited_apart(
    chat_engine: Engine, gateway_factory: GatewayFactory, database_url: str
) -> None:
    gw = await gateway_factory(
        upstreams=[chat_engine.base_url], database_url=database_url, admin_key=ADMIN_KEY
    )
    key = await create_key(gw, trusted_front_end=True, end_user_rpm=2)
    body = {"model": chat_engine.model, "messages": ASK, "max_tokens": 8, "stream": True}
    statuses: list[int] = []
    async with gw.client() as client:
        for who in (ALICE, ALICE, ALICE, BOB):
            response = await client.post(
                "/v1/chat/completions",
                json=body,
                headers=open_webui_headers(key.secret, *who, chat="c"),
            )
            statuses.append(response.status_code)
        other_app = await client.post(
            "/v1/chat/completions",
            json={**body, "stream": False, "user": "carol"},
            headers=key.headers,
        )
    assert statuses == [200, 200, 429, 200]
    assert other_app.status_code == 200, other_app.text
    await gw.storage.usage.flush()
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT end_user, status, prompt_tokens, completion_tokens FROM usage_events "
            "WHERE status = 200 ORDER BY id"
        ).fetchall()
    assert [r[0] for r in rows] == [
        "alice@example.com",
        "alice@example.com",
        "bob@example.com",
        "carol",
    ]
    # vLLM's own counts, per person.
    assert all(r[2] > 0 and 0 < r[3] <= 8 for r in rows)
    assert other_app.json()["usage"]["prompt_tokens"] == rows[3][2]
