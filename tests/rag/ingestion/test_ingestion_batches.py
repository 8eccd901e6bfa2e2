"""Ingestion's batches in parallel and rows by COPY: the same chunks and vectors as one
batch at a time, never more batches at the engine than the setting (or the key) allows,
and a failure mid-file still leaves nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from gateway.db.url import libpq_url
from gateway.rag.index import vector_literal
from gateway.rag.ingestion.chunking import ChunkingStrategy, estimate_tokens
from gateway.rag.ingestion.ingest_run import CALIBRATION_CHARS
from gateway.rag.ingestion.splitting import chunk_text
from tests.admin import admin_headers, create_key
from tests.fakes.embedder import FakeEmbedder, count_tokens, embed_text
from tests.rag.conftest import RagFactory
from tests.rag.ingestion.test_ingestion_staged import DOC, attach, counts, state

STRATEGY = ChunkingStrategy("static", 100, 0)  # SMALL_CHUNKS


def stored(database_url: str) -> list[tuple[int, str, HalfVector, bool]]:
    """(idx, text, vector, equal to the vector the old text path would have stored)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        register_vector(conn)
        rows = conn.execute("SELECT idx, text, embedding FROM chunks ORDER BY idx").fetchall()
        out = []
        for idx, body, vector in rows:
            literal = vector_literal(embed_text(body))
            same = conn.execute("SELECT CAST(%s AS halfvec) = %s", (literal, vector)).fetchone()
            assert same is not None
            out.append((idx, body, vector, bool(same[0])))
    return out


def pending_pages(database_url: str) -> int:
    """Pages of the text index's pending list (merging them: a check, once)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute("SELECT gin_clean_pending_list('ix_chunks_tsv'::regclass)").fetchone()
    assert row is not None
    return int(row[0])


async def ingest(client: httpx.AsyncClient, data: bytes = DOC) -> dict[str, Any]:
    ids = await attach(client, data)
    for _ in range(400):
        if (job := await state(client, ids))["status"] != "in_progress":
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("ingestion did not end")


async def test_parallel_batches_store_the_chunks_and_vectors_of_the_text(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder
) -> None:
    gw = await rag_factory(database_url, embedding_batch_size=3, embedding_parallel_batches=4)
    embedder.behaviour.delay_s = 0.02
    async with gw.client(headers=admin_headers()) as client:
        job = await ingest(client)
        requests = embedder.seen.embedding_requests
        hits = await client.post(
            f"/v1/vector_stores/{job['vector_store_id']}/search", json={"query": "Section 17"}
        )
    assert job["status"] == "completed", job
    text = DOC.decode()
    sample = text[:CALIBRATION_CHARS]
    calibration = count_tokens(sample) / estimate_tokens(sample)  # by the engine's /tokenize
    expected = [c.text for c in chunk_text(text, STRATEGY, calibration)]
    rows = stored(database_url)
    assert [r[0] for r in rows] == list(range(len(expected)))  # 14 batches, in order
    assert [r[1] for r in rows] == expected
    assert all(r[2] == HalfVector(embed_text(r[1])) for r in rows)
    assert all(r[3] for r in rows)  # what the INSERT of a text literal stored before
    assert requests == -(-len(expected) // 3)
    assert "Section 17." in hits.json()["data"][0]["content"][0]["text"]
    await asyncio.sleep(1.0)  # the worker, idle, merges the text index's pending list
    assert pending_pages(database_url) == 0


async def test_no_more_batches_at_the_engine_than_allowed(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder
) -> None:
    gw = await rag_factory(
        database_url, embedding_batch_size=2, embedding_parallel_batches=3, ingest_concurrency=1
    )
    embedder.behaviour.delay_s = 0.1  # long enough for every batch allowed to overlap
    async with gw.client(headers=admin_headers()) as client:
        assert (await ingest(client))["status"] == "completed"
        assert embedder.seen.max_in_flight == 3
        # A key allowed one request at a time gets one batch at a time.
        key = await create_key(client, "one-at-a-time", max_parallel=1)
        embedder.seen.max_in_flight = 0
        client.headers.update(key.headers)
        job = await ingest(client)
    assert job["status"] == "completed", job
    assert embedder.seen.max_in_flight == 1


async def test_a_failure_mid_file_leaves_nothing(
    rag_factory: RagFactory, database_url: str, embedder: FakeEmbedder
) -> None:
    gw = await rag_factory(database_url, embedding_batch_size=2, embedding_parallel_batches=3)
    embedder.behaviour.delay_s = 0.05
    async with gw.client(headers=admin_headers()) as client:
        ids = await attach(client)
        for _ in range(200):
            if counts(database_url)[1]:  # batches staged, others in flight
                break
            await asyncio.sleep(0.02)
        embedder.behaviour.fail_status = 400  # refused: no retry mends it
        for _ in range(200):
            if (job := await state(client, ids))["status"] != "in_progress":
                break
            await asyncio.sleep(0.05)
        embedder.behaviour.fail_status = None  # for the search's own embedding
        hits = await client.post(
            f"/v1/vector_stores/{ids['store']}/search", json={"query": "Section 1"}
        )
    assert job["status"] == "failed", job
    assert counts(database_url) == (0, 0)
    assert hits.json()["data"] == []
