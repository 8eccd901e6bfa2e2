"""LoRA adapters through the gateway on real vLLM (CPU): a rank-8 adapter written in the
test's folder, loaded with the admin API, listed, used under a key that may and refused
under one that may not, metered under its own name, then unloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg

from gateway.db.url import libpq_url
from gateway.local.engine import Engine
from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.conftest import GatewayFactory
from tests.e2e.lora_files import write_adapter

ADAPTER = "tiny-lora"
ASK = [{"role": "user", "content": "Name one colour."}]


async def _first_logprob(client: httpx.AsyncClient, model: str, headers: dict[str, str]) -> Any:
    response = await client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": ASK,
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": True,
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["logprobs"]["content"][0]["logprob"]


async def test_adapter_loaded_listed_served_metered_and_unloaded(
    lora_engine: Engine, gateway_factory: GatewayFactory, database_url: str, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    write_adapter(models_dir / "adapters" / "tiny", lora_engine.spec.model)
    gw = await gateway_factory(
        upstreams=[lora_engine.base_url],
        database_url=database_url,
        admin_key=ADMIN_KEY,
        models_dir=str(models_dir),
        usage_flush_interval_s=0.2,
    )
    base = lora_engine.model
    async with gw.client(timeout=120) as client:
        admin = admin_headers()
        escape = await client.post(
            "/admin/adapters",
            json={"name": ADAPTER, "path": "../models/adapters/tiny", "base_model": base},
            headers=admin,
        )
        assert escape.status_code == 400 and escape.json()["error"]["param"] == "path"
        missing = await client.post(
            "/admin/adapters",
            json={"name": ADAPTER, "path": "adapters/none", "base_model": base},
            headers=admin,
        )
        # vLLM's own refusal (404 "No adapter found"), as an OpenAI-shaped 400.
        assert missing.status_code == 400, missing.text
        assert missing.json()["error"]["code"] == "adapter_rejected"

        loaded = await client.post(
            "/admin/adapters",
            json={"name": ADAPTER, "path": "adapters/tiny", "base_model": base},
            headers=admin,
        )
        assert loaded.status_code == 201, loaded.text
        assert loaded.json()["engines"] == [lora_engine.base_url]
        assert loaded.json()["path"] == str(models_dir / "adapters" / "tiny")
        again = await client.post(
            "/admin/adapters",
            json={"name": ADAPTER, "path": "adapters/tiny", "base_model": base},
            headers=admin,
        )
        assert again.status_code == 409

        cards = {c["id"]: c for c in (await client.get("/v1/models", headers=admin)).json()["data"]}
        assert cards[ADAPTER]["parent"] == base  # vLLM's own card, found by discovery

        user = await create_key(client, "adapter-user", models=[ADAPTER])
        other = await create_key(client, "base-only", models=[base])
        listed = (await client.get("/v1/models", headers=user.headers)).json()["data"]
        assert [c["id"] for c in listed] == [ADAPTER]

        answer = await client.post(
            "/v1/chat/completions",
            json={"model": ADAPTER, "messages": ASK, "max_tokens": 8},
            headers=user.headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == ADAPTER
        refused = await client.post(
            "/v1/chat/completions",
            json={"model": ADAPTER, "messages": ASK, "max_tokens": 8},
            headers=other.headers,
        )
        assert refused.status_code == 403, refused.text

        # The adapter is applied: the same greedy first token has another probability.
        with_adapter = await _first_logprob(client, ADAPTER, admin)
        without = await _first_logprob(client, base, admin)
        assert with_adapter != without

        await gw.storage.usage.flush()
        with psycopg.connect(libpq_url(database_url)) as conn:
            rows = conn.execute(
                "SELECT model, status, prompt_tokens, completion_tokens FROM usage_events "
                "WHERE key_id = %s",
                (user.id,),
            ).fetchall()
        assert len(rows) == 1
        model, status, prompt_tokens, completion_tokens = rows[0]
        assert (model, status) == (ADAPTER, 200)
        assert prompt_tokens > 0 and 0 < completion_tokens <= 8

        gone = await client.delete(f"/admin/adapters/{ADAPTER}", headers=admin)
        assert gone.status_code == 200, gone.text
        ids = [c["id"] for c in (await client.get("/v1/models", headers=admin)).json()["data"]]
        assert ADAPTER not in ids and base in ids
        after = await client.post(
            "/v1/chat/completions",
            json={"model": ADAPTER, "messages": ASK, "max_tokens": 8},
            headers=user.headers,
        )
        assert after.status_code == 404, after.text
        assert (await client.delete(f"/admin/adapters/{ADAPTER}", headers=admin)).status_code == 404
