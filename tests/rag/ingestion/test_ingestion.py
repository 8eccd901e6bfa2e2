"""Ingestion jobs: failures are per file, work survives restarts, replicas share it."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import openai
import psycopg
import pytest
from openai import AsyncOpenAI

from gateway.db.url import libpq_url
from gateway.rag.ingestion.worker import IngestWorker
from tests.admin import ADMIN_KEY
from tests.conftest import RunningGateway, SdkFactory, stop_gateway
from tests.fakes.embedder import FakeEmbedder
from tests.rag.conftest import RagFactory, stop_worker
from tests.rag.pdfs import BROKEN_PDF, text_pdf


def job_rows(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(
            "SELECT file_id, status, leased_by, attempts FROM vector_store_files ORDER BY seq"
        ).fetchall()


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_a_broken_file_fails_alone(rag_gateway: RunningGateway, sdk: SdkFactory) -> None:
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    store = await client.vector_stores.create(name="mixed")
    batch = await client.vector_stores.file_batches.upload_and_poll(
        store.id,
        files=[
            ("broken.pdf", io.BytesIO(BROKEN_PDF)),
            ("empty.txt", io.BytesIO(b"   ")),
            ("good.pdf", io.BytesIO(text_pdf("Solar panels face south"))),
        ],
    )
    assert batch.file_counts.failed == 2 and batch.file_counts.completed == 1
    files = {f.id: f async for f in client.vector_stores.files.list(store.id)}
    names = {(await client.files.retrieve(i)).filename: f for i, f in files.items()}
    broken = names["broken.pdf"]
    assert broken.status == "failed" and broken.last_error is not None
    assert broken.last_error.code == "invalid_file" and "PDF" in broken.last_error.message
    assert names["empty.txt"].last_error.code == "invalid_file"  # type: ignore[union-attr]
    hits = await client.vector_stores.search(store.id, query="solar panels")
    assert [h.filename for h in hits.data] == ["good.pdf"]
    failed = [f.id async for f in client.vector_stores.files.list(store.id, filter="failed")]
    assert set(failed) == {broken.id, names["empty.txt"].id}


async def test_restart_mid_ingestion_resumes(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder, sdk: SdkFactory
) -> None:
    first = await rag_factory(database_url)
    client = sdk(first, api_key=ADMIN_KEY)
    store = await client.vector_stores.create(name="resume")
    embedder.behaviour.delay_s = 30  # the first gateway never finishes
    uploaded = await client.files.create(
        file=("notes.txt", io.BytesIO(b"the spare key is under the blue pot")),
        purpose="assistants",
    )
    await client.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id)
    await wait_for(lambda: job_rows(database_url)[0][2] is not None)  # claimed
    await stop_worker(first)
    await stop_gateway(first)
    [(_, status, leased_by, attempts)] = job_rows(database_url)
    # Given back cleanly: still to do, no lease, the interrupted attempt not counted.
    assert (status, leased_by, attempts) == ("in_progress", None, 0)

    embedder.behaviour.delay_s = 0
    second = await rag_factory(database_url)
    done = await sdk(second, api_key=ADMIN_KEY).vector_stores.files.poll(
        uploaded.id, vector_store_id=store.id, poll_interval_ms=100
    )
    assert done.status == "completed"


async def test_an_expired_lease_is_taken_over(
    rag_gateway: RunningGateway, database_url: str, sdk: SdkFactory
) -> None:
    """A replica that died holding a job: another takes it once the lease runs out."""
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    await stop_worker(rag_gateway)
    store = await client.vector_stores.create(name="orphan")
    uploaded = await client.files.create(
        file=("a.txt", io.BytesIO(b"orphaned work")), purpose="assistants"
    )
    await client.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id)
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(
            "UPDATE vector_store_files SET leased_by = 'dead-replica', attempts = 1, "
            "lease_until = now() + interval '1 second'"
        )
    worker = IngestWorker(rag_gateway.retrieval, poll_s=0.2, lease_s=5.0)
    worker.start()
    try:
        done = await client.vector_stores.files.poll(
            uploaded.id, vector_store_id=store.id, poll_interval_ms=100, max_wait_seconds=10
        )
    finally:
        await worker.stop()
    assert done.status == "completed"
    assert job_rows(database_url)[0][3] == 2  # the dead replica's try, then ours


async def test_replicas_share_work_without_doing_it_twice(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder, sdk: SdkFactory
) -> None:
    gateways = [await rag_factory(database_url) for _ in range(2)]
    client = sdk(gateways[0], api_key=ADMIN_KEY)
    store = await client.vector_stores.create(name="shared")
    files = [(f"f{i}.txt", io.BytesIO(f"document number {i}".encode())) for i in range(6)]
    batch = await client.vector_stores.file_batches.upload_and_poll(store.id, files=files)
    assert batch.file_counts.completed == 6
    assert embedder.seen.inputs == 6  # one chunk each, embedded exactly once


async def test_cancelling_a_batch(
    rag_gateway: RunningGateway, embedder: FakeEmbedder, sdk: SdkFactory
) -> None:
    client: AsyncOpenAI = sdk(rag_gateway, api_key=ADMIN_KEY)
    store = await client.vector_stores.create(name="cancel")
    embedder.behaviour.delay_s = 1.0
    ids = [
        (await client.files.create(file=(f"{i}.txt", io.BytesIO(b"text")), purpose="assistants")).id
        for i in range(4)
    ]
    batch = await client.vector_stores.file_batches.create(store.id, file_ids=ids)
    assert batch.status == "in_progress" and batch.file_counts.in_progress == 4
    cancelled = await client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled" and cancelled.file_counts.in_progress == 0
    assert cancelled.file_counts.cancelled == 4
    await asyncio.sleep(1.5)  # a job that was mid-embedding drops its work
    files = [f async for f in client.vector_stores.files.list(store.id)]
    assert {f.status for f in files} == {"cancelled"}


async def test_upload_size_limit(rag_gateway: RunningGateway, sdk: SdkFactory) -> None:
    rag = rag_gateway.retrieval
    rag.settings = rag.settings.model_copy(update={"max_upload_bytes": 3 * 1024 * 1024})
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    big = io.BytesIO(b"x" * (3 * 1024 * 1024 + 1))
    with pytest.raises(openai.APIStatusError) as info:
        await client.files.create(file=("big.txt", big), purpose="assistants")
    assert info.value.status_code == 413
    assert [f async for f in client.files.list()] == []
    fits = await client.files.create(
        file=("ok.txt", io.BytesIO(b"y" * (2 * 1024 * 1024 + 5))), purpose="assistants"
    )
    assert fits.bytes == 2 * 1024 * 1024 + 5  # three parts
    assert len((await client.files.content(fits.id)).read()) == fits.bytes
