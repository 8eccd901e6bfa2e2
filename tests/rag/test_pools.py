"""Each kind of work has its own connections: with retrieval's pool taken whole, key
lookups, usage writes, /readyz and ingestion go on; retrieval requests wait their turn."""

from __future__ import annotations

import asyncio
import contextlib
import time

from sqlalchemy import text

from tests.admin import admin_headers, create_key
from tests.fakes.embedder import FakeEmbedder
from tests.rag.conftest import RagFactory


async def test_a_full_retrieval_pool_starves_nothing_else(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder
) -> None:
    gw = await rag_factory(database_url, rag_db_pool_size=2)
    rag = gw.state.retrieval
    assert rag is not None
    admin = admin_headers()
    newcomer = (await create_key(gw, "newcomer")).secret  # not looked up yet: not in the key cache
    embedder.behaviour.delay_s = 0.3
    async with gw.client(headers=admin) as client:
        store = (await client.post("/v1/vector_stores", json={"name": "s"})).json()["id"]
        upload = await client.post(
            "/v1/files", files={"file": ("a.txt", b"pools apart")}, data={"purpose": "assistants"}
        )
        await client.post(f"/v1/vector_stores/{store}/files", json={"file_id": upload.json()["id"]})
    async with gw.client(headers={"authorization": f"Bearer {newcomer}"}) as client:
        async with contextlib.AsyncExitStack() as held:
            for _ in range(2):  # every retrieval connection, taken and held
                conn = await held.enter_async_context(rag.db.connect())
                await conn.execute(text("SELECT 1"))
            waiting = asyncio.create_task(client.get("/v1/files"))
            began = time.perf_counter()
            models = await client.get("/v1/models")  # a key lookup on the gateway's own pool
            lookup_s = time.perf_counter() - began
            ready = await client.get("/readyz")
            await gw.storage.usage.flush()  # usage writes
            for _ in range(100):  # ingestion, on the worker's pool
                async with rag.jobs.connect() as conn:
                    status = (
                        await conn.execute(text("SELECT status FROM vector_store_files"))
                    ).scalar()
                if status != "in_progress":
                    break
                await asyncio.sleep(0.05)
            assert not waiting.done()  # a retrieval request waits for its own pool...
        files = await waiting  # ...and is served once a connection is free
    assert models.status_code == 200 and lookup_s < 1.0
    assert ready.status_code == 200
    assert status == "completed"
    assert files.status_code == 200
