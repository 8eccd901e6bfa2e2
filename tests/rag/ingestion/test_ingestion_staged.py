"""Ingestion a batch at a time: search sees a file whole or not at all, a stopped run leaves
nothing, a file over the chunk cap fails saying which setting to raise."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg

from gateway.db.url import libpq_url
from tests.admin import admin_headers
from tests.fakes.embedder import FakeEmbedder
from tests.rag.conftest import RagFactory

SMALL_CHUNKS = {
    "type": "static",
    "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0},
}
# ~40 chunks of 100 estimated tokens.
DOC = "\n\n".join(f"Section {i}. " + "alpha beta gamma delta " * 24 for i in range(40)).encode()


def counts(database_url: str) -> tuple[int, int]:
    """(chunks search can see, chunks staged by runs in progress)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        visible = conn.execute("SELECT count(*) FROM chunks").fetchone()
        staged = conn.execute("SELECT count(*) FROM chunk_staging").fetchone()
    assert visible is not None and staged is not None
    return visible[0], staged[0]


async def attach(client: httpx.AsyncClient, data: bytes = DOC) -> dict[str, str]:
    store = (await client.post("/v1/vector_stores", json={"name": "s"})).json()["id"]
    upload = await client.post(
        "/v1/files", files={"file": ("doc.txt", data)}, data={"purpose": "assistants"}
    )
    file_id = upload.json()["id"]
    attached = await client.post(
        f"/v1/vector_stores/{store}/files",
        json={"file_id": file_id, "chunking_strategy": SMALL_CHUNKS},
    )
    assert attached.status_code == 200, attached.text
    return {"store": store, "file": file_id}


async def state(client: httpx.AsyncClient, ids: dict[str, str]) -> dict[str, Any]:
    got = await client.get(f"/v1/vector_stores/{ids['store']}/files/{ids['file']}")
    return got.json()  # type: ignore[no-any-return]


async def test_search_never_sees_part_of_a_file(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder
) -> None:
    gw = await rag_factory(database_url, embedding_batch_size=4)
    embedder.behaviour.delay_s = 0.1  # ~10 batches: about a second of ingestion
    async with gw.client(headers=admin_headers()) as client:
        ids = await attach(client)
        seen_staged = 0
        while True:
            visible, staged = counts(database_url)
            hits = await client.post(
                f"/v1/vector_stores/{ids['store']}/search", json={"query": "alpha"}
            )
            # Still in progress after the search: the search came before completion.
            if (job := await state(client, ids))["status"] != "in_progress":
                break
            assert visible == 0 and hits.json()["data"] == []
            seen_staged = max(seen_staged, staged)
            await asyncio.sleep(0.05)
        hits = await client.post(
            f"/v1/vector_stores/{ids['store']}/search", json={"query": "Section 7"}
        )
    assert job["status"] == "completed"
    assert 0 < seen_staged < 40  # batches were staged as they came, not all at the end
    assert counts(database_url) == (40, 0)
    assert hits.json()["data"]


async def test_a_cancelled_run_leaves_nothing(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder
) -> None:
    gw = await rag_factory(database_url, embedding_batch_size=4, ingest_lease_s=1.5)
    embedder.behaviour.delay_s = 0.2
    async with gw.client(headers=admin_headers()) as client:
        ids = await attach(client)
        for _ in range(100):
            if counts(database_url)[1]:
                break
            await asyncio.sleep(0.05)
        batch = await client.post(
            f"/v1/vector_stores/{ids['store']}/file_batches", json={"file_ids": [ids["file"]]}
        )
        await client.post(
            f"/v1/vector_stores/{ids['store']}/file_batches/{batch.json()['id']}/cancel"
        )
        await asyncio.sleep(1.5)  # the run notices at its next lease renewal or batch
        job = await state(client, ids)
    assert job["status"] == "cancelled"
    assert counts(database_url) == (0, 0)


async def test_a_file_over_the_chunk_cap_fails_naming_the_setting(
    rag_factory: RagFactory, database_url: str
) -> None:
    gw = await rag_factory(database_url, max_chunks_per_file=10)
    async with gw.client(headers=admin_headers()) as client:
        ids = await attach(client)
        for _ in range(200):
            if (job := await state(client, ids))["status"] != "in_progress":
                break
            await asyncio.sleep(0.05)
    assert job["status"] == "failed"
    assert job["last_error"]["code"] == "max_chunks_per_file_exceeded"
    assert "GATEWAY_MAX_CHUNKS_PER_FILE" in job["last_error"]["message"]
    assert "10" in job["last_error"]["message"]
    assert counts(database_url) == (0, 0)
