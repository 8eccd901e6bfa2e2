"""What index maintenance costs a chunk insert: the same rows COPYed into `chunks` (as
ingestion writes them, gateway.rag.ingestion.chunk_copy) with every index, then with
one kind of index dropped at a time.

Embedded Postgres + pgvector, no engine: chunks of ~800 tokens of made-up words, random
384-d vectors, written a file (6 chunks) per transaction as ingestion completes a file.
Prints rows/s and the Postgres CPU time per row of each variant, measured side by side.

    python -m benchmarks.rag_index_cost                # 1,200 rows per variant
    python -m benchmarks.rag_index_cost --files 400
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.procs import tree_cpu_seconds
from benchmarks.rag_ingest import WORDS
from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.rag.ingestion.chunk_copy import CHUNKS, attributes, copy_rows, halfvec

DIMS = 384
PER_FILE = 6
HNSW = (
    "CREATE INDEX ix_chunks_hnsw_384 ON chunks USING hnsw "
    "((embedding::halfvec(384)) halfvec_cosine_ops) WHERE dims = 384"
)
# (label, SQL run before it, merge the GIN pending list after each file): side by side,
# in this order, on the same rows.
VARIANTS: list[tuple[str, list[str], bool]] = [
    ("all indexes, pending list merged per file (as ingestion)", [], True),
    ("all indexes (HNSW, GIN tsv, GIN attributes, btree)", [], False),
    ("without HNSW", ["DROP INDEX ix_chunks_hnsw_384"], False),
    ("without HNSW and GIN tsv", ["DROP INDEX ix_chunks_tsv"], False),
    ("without GIN tsv", [HNSW], False),
]


def rows(rng: random.Random, files: int) -> list[list[tuple[str, list[float]]]]:
    def chunk() -> tuple[str, list[float]]:
        words = " ".join(rng.choice(WORDS) for _ in range(700))
        return words, [rng.gauss(0, 1) for _ in range(DIMS)]

    return [[chunk() for _ in range(PER_FILE)] for _ in range(files)]


async def variant(db: AsyncEngine, name: str, data: list[list[tuple[str, list[float]]]]) -> None:
    async with db.begin() as conn:
        await conn.execute(
            text("INSERT INTO vector_stores (id, name, metadata) VALUES (:i, 'b', '{}')"),
            {"i": name},
        )
        for i in range(len(data)):
            await conn.execute(
                text(
                    "INSERT INTO files (id, filename, purpose, bytes) "
                    "VALUES (:id, 'f', 'assistants', 0)"
                ),
                {"id": f"{name}-{i}"},
            )
            await conn.execute(
                text(
                    "INSERT INTO vector_store_files (vector_store_id, file_id, status, attributes, "
                    "chunking_type, max_chunk_tokens, chunk_overlap_tokens, usage_bytes, attempts) "
                    "VALUES (:s, :id, 'in_progress', '{}', 'auto', 800, 400, 0, 0)"
                ),
                {"s": name, "id": f"{name}-{i}"},
            )


async def run(
    db: AsyncEngine,
    pid: int | None,
    label: str,
    data: list[list[tuple[str, list[float]]]],
    merge: bool,
) -> None:
    name = f"v{random.getrandbits(32):08x}"
    await variant(db, name, data)
    cpu = tree_cpu_seconds(pid)
    began = time.perf_counter()
    for i, file in enumerate(data):
        async with db.begin() as conn:
            await copy_rows(
                conn,
                CHUNKS,
                [
                    (name, f"{name}-{i}", j, body, attributes({}), DIMS, halfvec(vector))
                    for j, (body, vector) in enumerate(file)
                ],
            )
        if merge:
            async with db.begin() as conn:
                await conn.execute(text("SELECT gin_clean_pending_list('ix_chunks_tsv'::regclass)"))
    took = time.perf_counter() - began
    after = tree_cpu_seconds(pid)
    count = len(data) * PER_FILE
    pg = (
        ""
        if cpu is None or after is None
        else f", Postgres CPU {(after - cpu) / count * 1000:.2f} ms/row"
    )
    print(f"{label:58s} {count / took:6.0f} rows/s{pg}")


async def main(files: int) -> None:
    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="rag-index-"), cleanup_mode="delete")  # type: ignore[attr-defined]
    url = server.get_uri()
    pid = server.get_pid()
    upgrade(url)
    db = create_engine(url, pool_size=2)
    try:
        async with db.begin() as conn:
            await conn.execute(text(HNSW))
        rng = random.Random(5)
        # Rows first, so that no variant pays for an empty index's first pages.
        await run(db, pid, "(warm-up, all indexes)", rows(rng, files // 2), True)
        data = rows(rng, files)
        for label, before, merge in VARIANTS:
            async with db.begin() as conn:
                for statement in before:
                    await conn.execute(text(statement))
            await run(db, pid, label, data, merge)
    finally:
        await db.dispose()
        server.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200, help="files of 6 chunks per variant")
    asyncio.run(main(parser.parse_args().files))
