"""Every embedding the gateway asks for is admitted and metered for the key that caused it:
a vector store search, chat and Responses with file_search, ingesting a file."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import psycopg
import pytest

from gateway.db.url import libpq_url
from gateway.rag.ingestion.worker import IngestWorker
from gateway.rag.metering import INGEST_ROUTE, SEARCH_ROUTE
from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.conftest import RunningGateway
from tests.fakes.embedder import FakeEmbedder, count_tokens
from tests.fakes.engine import FakeEngine
from tests.rag.conftest import RagFactory, stop_worker

DOC = b"The boiler is serviced every October by the caretaker.\n\nThe code is 4711.\n"
CHAT = "/v1/chat/completions"


def events(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        cursor = conn.execute(
            "SELECT request_id, key_id, model, route, status, prompt_tokens, completion_tokens "
            "FROM usage_events ORDER BY id"
        )
        names = [c.name for c in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


async def flushed(gw: RunningGateway, database_url: str) -> list[dict[str, Any]]:
    await gw.storage.usage.flush()
    return events(database_url)


async def store_with_file(client: httpx.AsyncClient, name: str = "boiler.txt") -> dict[str, Any]:
    """A store of the caller's own, with one file attached (and so queued for ingestion)."""
    store = (await client.post("/v1/vector_stores", json={"name": "s"})).json()
    upload = await client.post(
        "/v1/files", files={"file": (name, DOC)}, data={"purpose": "assistants"}
    )
    assert upload.status_code == 200, upload.text
    attached = await client.post(
        f"/v1/vector_stores/{store['id']}/files", json={"file_id": upload.json()["id"]}
    )
    assert attached.status_code == 200, attached.text
    return {"store": store["id"], "file": upload.json()["id"]}


async def settled(client: httpx.AsyncClient, ids: dict[str, Any]) -> dict[str, Any]:
    for _ in range(200):
        got = (await client.get(f"/v1/vector_stores/{ids['store']}/files/{ids['file']}")).json()
        if got["status"] != "in_progress":
            return got  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("ingestion did not end")


def file_search(store: str) -> dict[str, Any]:
    return {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "When is the boiler serviced?"}],
        "tools": [{"type": "file_search", "vector_store_ids": [store]}],
    }


async def test_a_key_without_the_embedding_model_gets_no_retrieval(
    rag_factory: RagFactory,
    database_url: str,
    embedder: FakeEmbedder,
    chat_engine: FakeEngine,
) -> None:
    gw = await rag_factory(database_url, upstreams=[embedder.url, chat_engine.url])
    key = await create_key(gw, "m", models=["fake-model"])  # chat only
    async with gw.client(headers=key.headers) as client:
        ids = await store_with_file(client)
        job = await settled(client, ids)
        search = await client.post(
            f"/v1/vector_stores/{ids['store']}/search", json={"query": "boiler"}
        )
        chat = await client.post(CHAT, json=file_search(ids["store"]))
        plain = await client.post(
            CHAT, json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert job["status"] == "failed"
    assert job["last_error"]["code"] == "model_not_allowed"
    assert key.id in job["last_error"]["message"] and "fake-embed" in job["last_error"]["message"]
    for refused in (search, chat):
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "model_not_allowed" and "fake-embed" in error["message"]
    assert plain.status_code == 200  # the key's own model still works
    assert embedder.seen.embedding_requests == 0  # nothing reached the engine
    rows = await flushed(gw, database_url)
    assert [(r["route"], r["status"]) for r in rows if r["model"] == "fake-embed"] == [
        (SEARCH_ROUTE, 403)
    ]


async def test_an_allowed_key_pays_for_every_embedding(
    rag_factory: RagFactory,
    database_url: str,
    embedder: FakeEmbedder,
    chat_engine: FakeEngine,
) -> None:
    gw = await rag_factory(database_url, upstreams=[embedder.url, chat_engine.url])
    key = await create_key(gw, "m")
    async with gw.client(headers=key.headers) as client:
        ids = await store_with_file(client)
        assert (await settled(client, ids))["status"] == "completed"
        search = await client.post(
            f"/v1/vector_stores/{ids['store']}/search",
            json={"query": "boiler serviced"},
            headers={"x-request-id": "search-1"},
        )
        chat = await client.post(
            CHAT, json=file_search(ids["store"]), headers={"x-request-id": "chat-1"}
        )
    assert search.status_code == 200 and search.json()["data"]
    assert chat.status_code == 200
    rows = await flushed(gw, database_url)
    embedded = [r for r in rows if r["model"] == "fake-embed"]
    assert {r["key_id"] for r in embedded} == {key.id}
    assert all(r["status"] == 200 and r["completion_tokens"] == 0 for r in embedded)
    by_route = {r["route"]: r for r in embedded}
    assert set(by_route) == {INGEST_ROUTE, SEARCH_ROUTE, CHAT}
    # The engine's own count of what it embedded.
    assert by_route[INGEST_ROUTE]["prompt_tokens"] == count_tokens(DOC.decode().strip())
    assert by_route[SEARCH_ROUTE]["prompt_tokens"] == count_tokens("boiler serviced")
    assert by_route[SEARCH_ROUTE]["request_id"] == "search-1"
    # The chat's query embedding is its own event, on the chat request's id.
    assert by_route[CHAT]["request_id"] == "chat-1"
    assert by_route[CHAT]["prompt_tokens"] == count_tokens("When is the boiler serviced?")
    chat_events = [r for r in rows if r["model"] == "fake-model"]
    assert [(r["request_id"], r["key_id"], r["status"]) for r in chat_events] == [
        ("chat-1", key.id, 200)
    ]


async def test_the_admin_key_is_unlimited_and_metered_as_admin(
    rag_factory: RagFactory, database_url: str, sdk: Any
) -> None:
    gw = await rag_factory(database_url)
    client = sdk(gw, api_key=ADMIN_KEY)
    store = await client.vector_stores.create(name="admin's")
    await client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("a.txt", io.BytesIO(DOC))
    )
    await client.vector_stores.search(store.id, query="boiler")
    rows = await flushed(gw, database_url)
    assert {(r["key_id"], r["route"]) for r in rows} == {
        ("admin", INGEST_ROUTE),
        ("admin", SEARCH_ROUTE),
    }


async def test_search_takes_the_keys_limits(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder
) -> None:
    gw = await rag_factory(database_url)
    key = await create_key(gw, "m", rpm=2)
    async with gw.client(headers=key.headers) as client:
        store = (await client.post("/v1/vector_stores", json={"name": "s"})).json()["id"]
        answers = [
            await client.post(f"/v1/vector_stores/{store}/search", json={"query": "q"})
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["code"] == "rate_limit_exceeded"
    assert int(answers[2].headers["retry-after"]) >= 1
    assert embedder.seen.embedding_requests == 2


# -- ingestion: rate limits are waited out; no quota or no key ends the file clearly ------


async def test_a_rate_limited_ingestion_waits_instead_of_failing(
    rag_factory: RagFactory,
    database_url: str,
    embedder: FakeEmbedder,
    chat_engine: FakeEngine,
) -> None:
    gw = await rag_factory(database_url, upstreams=[embedder.url, chat_engine.url])
    key = await create_key(gw, "m", max_parallel=1)
    chat_engine.behaviour.first_delay = 2.0  # holds the key's only slot for 2 s
    async with gw.client(headers=key.headers) as client:
        busy = asyncio.create_task(
            client.post(
                CHAT, json={"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
            )
        )
        await asyncio.sleep(0.3)
        ids = await store_with_file(client)
        await asyncio.sleep(1.0)
        waiting = (await client.get(f"/v1/vector_stores/{ids['store']}/files/{ids['file']}")).json()
        assert (await busy).status_code == 200
        done = await settled(client, ids)
    assert waiting["status"] == "in_progress"  # refused a slot, not failed
    assert done["status"] == "completed"
    rows = await flushed(gw, database_url)
    assert [r["status"] for r in rows if r["route"] == INGEST_ROUTE] == [200]


async def test_ingestion_stops_when_the_quota_is_spent(
    rag_factory: RagFactory, database_url: str
) -> None:
    gw = await rag_factory(database_url, embedding_batch_size=1)
    key = await create_key(gw, "m", daily_tokens=5)
    doc = b"\n\n".join(b"paragraph %d " % i + b"word " * 150 for i in range(6))
    async with gw.client(headers=key.headers) as client:
        store = (await client.post("/v1/vector_stores", json={"name": "s"})).json()["id"]
        upload = await client.post(
            "/v1/files", files={"file": ("long.txt", doc)}, data={"purpose": "assistants"}
        )
        file_id = upload.json()["id"]
        await client.post(
            f"/v1/vector_stores/{store}/files",
            json={
                "file_id": file_id,
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 0},
                },
            },
        )
        job = await settled(client, {"store": store, "file": file_id})
    assert job["status"] == "failed"
    assert job["last_error"]["code"] == "insufficient_quota"
    assert key.id in job["last_error"]["message"]
    with psycopg.connect(libpq_url(database_url)) as conn:
        staged = conn.execute("SELECT count(*) FROM chunk_staging").fetchone()
        visible = conn.execute("SELECT count(*) FROM chunks").fetchone()
    assert staged == (0,) and visible == (0,)  # nothing of the half-embedded file remains


@pytest.mark.parametrize("how", ["revoked", "deleted"])
async def test_ingestion_by_a_key_that_is_gone_fails_clearly(
    rag_factory: RagFactory, database_url: str, how: str
) -> None:
    gw = await rag_factory(database_url)
    await stop_worker(gw)
    key = await create_key(gw, "m")
    async with gw.client(headers=key.headers) as client:
        ids = await store_with_file(client)
    with psycopg.connect(libpq_url(database_url)) as conn:
        if how == "revoked":
            conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key.id,))
        else:
            conn.execute("DELETE FROM api_keys WHERE id = %s", (key.id,))
    worker = IngestWorker(gw.retrieval, poll_s=0.1)
    worker.start()
    try:
        async with gw.client(headers=admin_headers()) as admin:
            job = await settled(admin, ids)
    finally:
        await worker.stop()
    assert job["status"] == "failed" and job["last_error"]["code"] == "invalid_api_key"
    assert key.id in job["last_error"]["message"]


async def test_file_search_within_a_chat_counts_tokens_not_another_request(
    rag_factory: RagFactory,
    database_url: str,
    embedder: FakeEmbedder,
    chat_engine: FakeEngine,
) -> None:
    gw = await rag_factory(database_url, upstreams=[embedder.url, chat_engine.url])
    admin = admin_headers()
    async with gw.client(headers=admin) as client:
        ids = await store_with_file(client)
        await settled(client, ids)
    # One request a minute, one at a time: the chat's own embedding must not need a second.
    key = await create_key(gw, "m", rpm=1, max_parallel=1)
    with psycopg.connect(libpq_url(database_url)) as conn:  # share the admin's store
        conn.execute("UPDATE vector_stores SET owner = %s", (key.id,))
    async with gw.client(headers=key.headers) as client:
        first = await client.post(CHAT, json=file_search(ids["store"]))
        second = await client.post(CHAT, json=file_search(ids["store"]))
    assert first.status_code == 200, first.text
    assert second.status_code == 429  # the key's one request a minute is spent
    rows = [r for r in await flushed(gw, database_url) if r["key_id"] == key.id]
    assert sorted((r["model"], r["status"]) for r in rows) == [
        ("fake-embed", 200),
        ("fake-model", 200),
        ("fake-model", 429),
    ]


async def test_a_chunk_larger_than_the_keys_tpm_fails_the_file_clearly(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder
) -> None:
    gw = await rag_factory(database_url)
    key = await create_key(gw, "m", tpm=5)  # DOC is ~70 bytes: ~17 tokens reserved
    async with gw.client(headers=key.headers) as client:
        job = await settled(client, await store_with_file(client))
    assert job["status"] == "failed" and job["last_error"]["code"] == "rate_limit_exceeded"
    assert "tpm" in job["last_error"]["message"] and key.id in job["last_error"]["message"]
    assert embedder.seen.embedding_requests == 0
