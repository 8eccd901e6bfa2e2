"""Retrieval cannot be used to reach the engines unmetered: against a real gateway process,
search, chat's file_search and ingestion are refused to a key not allowed the embedding
model, limited by the key's limits, and recorded as usage for a key that is allowed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg

from gateway.db.url import libpq_url
from tests.admin import create_key
from tests.fakes.embedder import FakeEmbedder
from tests.gateway_process import GatewayProcess
from tests.hostile.conftest import KeyedProcess

DOC = b"The spare key hangs behind the blue door in the hall.\n"


async def new_key(gw: GatewayProcess, **fields: Any) -> tuple[httpx.AsyncClient, str]:
    """A client with a new key of `fields`, and the key's id."""
    created = await create_key(gw, "k", **fields)
    return gw.client(headers=created.headers), created.id


async def own_store(client: httpx.AsyncClient) -> tuple[str, str]:
    """A store with one file attached by `client`'s key; (store, file) once ingestion ends."""
    upload = await client.post(
        "/v1/files", files={"file": ("key.txt", DOC)}, data={"purpose": "assistants"}
    )
    store = (
        await client.post(
            "/v1/vector_stores", json={"name": "s", "file_ids": [upload.json()["id"]]}
        )
    ).json()["id"]
    for _ in range(100):
        counts = (await client.get(f"/v1/vector_stores/{store}")).json()["file_counts"]
        if not counts["in_progress"]:
            return store, upload.json()["id"]
        await asyncio.sleep(0.1)
    raise AssertionError("ingestion did not end")


def chat_with_file_search(store: str) -> dict[str, Any]:
    return {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "Where is the spare key?"}],
        "tools": [{"type": "file_search", "vector_store_ids": [store]}],
    }


async def usage(url: str, key_id: str, expected: int) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for _ in range(50):
        with psycopg.connect(libpq_url(url)) as conn:
            rows = conn.execute(
                "SELECT model, route, status, prompt_tokens FROM usage_events "
                "WHERE key_id = %s ORDER BY id",
                (key_id,),
            ).fetchall()
        if len(rows) >= expected:
            break
        await asyncio.sleep(0.1)
    return rows


async def test_retrieval_is_refused_without_the_model_and_metered_with_it(
    keyed_process: KeyedProcess,
    embedder: FakeEmbedder,
    database_url: str,
) -> None:
    gw = await keyed_process(embedder)
    chat_only, chat_only_id = await new_key(gw, models=["fake-model"])
    allowed, allowed_id = await new_key(gw)
    async with chat_only, allowed:
        store, file_id = await own_store(chat_only)
        job = (await chat_only.get(f"/v1/vector_stores/{store}/files/{file_id}")).json()
        refused = [
            await chat_only.post(f"/v1/vector_stores/{store}/search", json={"query": "key"}),
            await chat_only.post("/v1/chat/completions", json=chat_with_file_search(store)),
        ]
        assert embedder.seen.embedding_requests == 0  # nothing reached the engine
        good_store, _ = await own_store(allowed)
        served = [
            await allowed.post(f"/v1/vector_stores/{good_store}/search", json={"query": "key"}),
            await allowed.post("/v1/chat/completions", json=chat_with_file_search(good_store)),
        ]
    assert job["status"] == "failed" and job["last_error"]["code"] == "model_not_allowed"
    assert [r.status_code for r in refused] == [403, 403]
    assert {r.json()["error"]["code"] for r in refused} == {"model_not_allowed"}
    assert [r.status_code for r in served] == [200, 200]
    embedding_events = [r for r in await usage(database_url, allowed_id, 4) if r[0] == "fake-embed"]
    assert [(route, status) for _, route, status, _ in embedding_events] == [
        ("/v1/vector_stores/{vector_store_id}/files", 200),
        ("/v1/vector_stores/{vector_store_id}/search", 200),
        ("/v1/chat/completions", 200),
    ]
    assert all(tokens > 0 for *_, tokens in embedding_events)
    refused_events = await usage(database_url, chat_only_id, 2)
    assert ("fake-embed", "/v1/vector_stores/{vector_store_id}/search", 403, 0) in refused_events


async def test_search_cannot_dodge_the_keys_rate_limit(
    keyed_process: KeyedProcess,
    embedder: FakeEmbedder,
    database_url: str,
) -> None:
    gw = await keyed_process(embedder)
    greedy, _ = await new_key(gw, rpm=3)
    other, _ = await new_key(gw)
    async with greedy, other:
        store = (await greedy.post("/v1/vector_stores", json={"name": "g"})).json()["id"]
        answers = await asyncio.gather(
            *(
                greedy.post(f"/v1/vector_stores/{store}/search", json={"query": "q"})
                for _ in range(10)
            )
        )
        theirs = (await other.post("/v1/vector_stores", json={"name": "o"})).json()["id"]
        fine = await other.post(f"/v1/vector_stores/{theirs}/search", json={"query": "q"})
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 3 + [429] * 7
    assert embedder.seen.embedding_requests == 4  # the greedy key's 3, then the other's
    assert fine.status_code == 200
