"""Ingestion throughput: chunks per second from stored files to searchable rows.

Embedded Postgres + pgvector, a fast fake embedding engine on loopback (hashed bag of
words, 384-d, `/tokenize` included), and the gateway's own ingestion worker: files are
put in `files`/`file_parts` and queued in one store; the clock runs until every file is
`completed`. Measures parsing, chunking (auto: 800/400 tokens), embedding round trips in
batches, and inserts with HNSW + GIN maintenance. Besides chunks/s it prints the CPU time
per chunk of this process (the gateway's ingestion and the fake engine) and of Postgres,
which other work on a shared machine disturbs far less than the wall clock.

    python -m benchmarks.rag_ingest                  # 200 files of ~20 KB
    python -m benchmarks.rag_ingest --files 50 --concurrency 1
    python -m benchmarks.rag_ingest --no-hnsw        # what maintaining the HNSW index costs
    python -m benchmarks.rag_ingest --files 8 --size 2000000 --chunk-tokens 200
    python -m benchmarks.rag_ingest --files 4 --size 1000000 --embed-delay-ms 20 \
        --parallel-batches 1                         # large files, an engine with latency
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time

from sqlalchemy import text

from benchmarks.procs import machine_busy_seconds, self_cpu_seconds, tree_cpu_seconds
from gateway.admission.guard import Guard
from gateway.config import Settings
from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.keys.callers import OpenGateway
from gateway.metrics import Metrics
from gateway.rag.ingestion.worker import IngestWorker
from gateway.rag.resources import open_retrieval
from gateway.upstream.client import create_session
from gateway.upstream.engines import Engines
from gateway.upstream.registry import Registry
from tests.fakes.embedder import FakeEmbedder

WORDS = [f"word{i}" for i in range(5000)]


def document(rng: random.Random, size: int) -> bytes:
    out: list[str] = []
    length = 0
    while length < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))) + "."
        out.append(sentence if rng.random() > 0.1 else sentence + "\n\n")
        length += len(sentence) + 1
    return " ".join(out).encode()


async def main(args: argparse.Namespace) -> None:
    files, size, concurrency = args.files, args.size, args.concurrency
    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="rag-ingest-"), cleanup_mode="delete")  # type: ignore[attr-defined]
    url = server.get_uri()
    upgrade(url)
    embedder = await FakeEmbedder("bench-embed").start()
    embedder.behaviour.dims = 384
    embedder.behaviour.max_model_len = 8192
    embedder.behaviour.delay_s = args.embed_delay_ms / 1000
    settings = Settings(
        upstreams=[embedder.url],
        embedding_model="bench-embed",
        database_url=url,
        embedding_parallel_batches=args.parallel_batches,
        embedding_batch_size=args.batch_size,
    )
    session = create_session(settings)
    registry = Registry(settings.upstreams)
    upstream = registry.upstreams[0]
    registry.set_models(upstream, [{"id": "bench-embed", "max_model_len": 8192}])
    upstream.healthy = True
    metrics = Metrics()
    engines = Engines(session, registry, settings, metrics, lambda upstream, why: None)
    # Files attached by no key are embedded unmetered: the bench measures ingestion alone.
    guard = Guard(settings, metrics, OpenGateway())
    db = create_engine(url, pool_size=4)
    rag = await open_retrieval(
        url, settings.model_copy(update={"ingest_concurrency": concurrency}), guard, engines
    )
    rng = random.Random(3)
    try:
        async with db.begin() as conn:
            await conn.execute(
                text("INSERT INTO vector_stores (id, name, metadata) VALUES ('vs_b', 'b', '{}')")
            )
            for i in range(files):
                await conn.execute(
                    text(
                        "INSERT INTO files (id, filename, purpose, bytes) "
                        "VALUES (:id, :name, 'assistants', :n)"
                    ),
                    {"id": f"file-{i}", "name": f"doc{i}.txt", "n": size},
                )
                await conn.execute(
                    text("INSERT INTO file_parts (file_id, part, data) VALUES (:id, 0, :data)"),
                    {"id": f"file-{i}", "data": document(rng, size)},
                )
        worker = IngestWorker(rag, concurrency=concurrency, poll_s=0.05)
        if args.no_hnsw:
            worker.known_dims.add(384)  # the worker then never creates the index
        postgres = server.get_pid()
        cpu = (self_cpu_seconds(), tree_cpu_seconds(postgres), machine_busy_seconds())
        began = time.perf_counter()
        async with db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO vector_store_files (vector_store_id, file_id, status, "
                    "attributes, chunking_type, max_chunk_tokens, chunk_overlap_tokens, "
                    "usage_bytes, attempts) SELECT 'vs_b', id, 'in_progress', '{}', :kind, "
                    ":size, :overlap, 0, 0 FROM files"
                ),
                {
                    "kind": "static" if args.chunk_tokens else "auto",
                    "size": args.chunk_tokens or 800,
                    "overlap": args.overlap if args.chunk_tokens else 400,
                },
            )
        worker.start()
        while True:
            async with db.connect() as conn:
                left = (
                    await conn.execute(
                        text("SELECT count(*) FROM vector_store_files WHERE status = 'in_progress'")
                    )
                ).scalar()
            if not left:
                break
            await asyncio.sleep(0.1)
        took = time.perf_counter() - began
        ours, pg, busy = self_cpu_seconds(), tree_cpu_seconds(postgres), machine_busy_seconds()
        await worker.stop()
        async with db.connect() as conn:
            chunks = (await conn.execute(text("SELECT count(*) FROM chunks"))).scalar() or 0
            failed = (
                await conn.execute(
                    text("SELECT count(*) FROM vector_store_files WHERE status <> 'completed'")
                )
            ).scalar()
        print(
            f"{files} files x {size // 1024} KiB -> {chunks} chunks (384-d) in {took:.1f} s: "
            f"{chunks / took:.0f} chunks/s, {files * size / took / 1e6:.2f} MB/s, "
            f"{embedder.seen.embedding_requests} embedding requests, {failed} not completed "
            f"(worker concurrency {concurrency})"
        )
        per_chunk = 1000 / max(1, chunks)
        line = f"CPU per chunk: this process {(ours - cpu[0]) * per_chunk:.2f} ms"
        if pg is not None and cpu[1] is not None:
            line += f", Postgres {(pg - cpu[1]) * per_chunk:.2f} ms"
            if busy is not None and cpu[2] is not None:
                other = (busy - cpu[2]) - (ours - cpu[0]) - (pg - cpu[1])
                line += f"; other work on the machine: {other / took * 100:.0f}% of a core"
        print(line)
    finally:
        await db.dispose()
        await rag.close()
        await session.close()
        await embedder.stop()
        server.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=20_000, help="bytes per file")
    parser.add_argument("--concurrency", type=int, default=2, help="files at once")
    parser.add_argument("--batch-size", type=int, default=64, help="chunks per request")
    parser.add_argument("--parallel-batches", type=int, default=2, help="per file")
    parser.add_argument("--embed-delay-ms", type=float, default=0, help="per request")
    parser.add_argument("--no-hnsw", action="store_true", help="no vector index")
    parser.add_argument("--chunk-tokens", type=int, help="static chunks (default: auto, 800)")
    parser.add_argument("--overlap", type=int, default=0, help="tokens, with --chunk-tokens")
    asyncio.run(main(parser.parse_args()))
