"""Search latency over pgvector at 10k and 100k chunks, with and without an attribute filter.

Synthetic data is generated inside Postgres (384-d random `halfvec`s, texts drawn from a
log-uniform vocabulary so that some words are common and most are rare, and a `category`
attribute with 10 values), the HNSW index is built as the gateway builds it, and then the
gateway's own search path (`gateway.rag.search.hybrid.search_vectors`: the vector and the
text ranking, a prepared statement each, at once on two connections of search's own
pool, RRF in Python) is timed
with random query vectors, side by side with bare pgvector top-10 on a held psycopg
connection. The query's embedding is not included: it costs whatever the engine costs.

    python -m benchmarks.rag_search                 # 10k and 100k, ~2-3 min on 2 cores
    python -m benchmarks.rag_search --sizes 10000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from typing import Any

import psycopg
from sqlalchemy import text

from gateway.db.engine import SESSION_OPTIONS, create_engine
from gateway.db.migrate import upgrade
from gateway.db.read_pool import ReadPool
from gateway.db.url import libpq_url
from gateway.rag.common_terms import CommonTerms
from gateway.rag.index import distance_sql, index_name, index_sql, vector_literal
from gateway.rag.search.filters import compile_filter
from gateway.rag.search.hybrid import search_vectors
from gateway.rag.search.ranking import text_sql, vector_sql

DIMS = 384
STORE = "vs_bench"
FILE = "file-bench"
VOCAB = 20_000
WORDS_PER_CHUNK = 120

_SETUP = [
    "INSERT INTO files (id, owner, filename, purpose, bytes) "
    "VALUES ('file-bench', NULL, 'bench.txt', 'assistants', 0)",
    "INSERT INTO vector_stores (id, owner, name, metadata) VALUES ('vs_bench', NULL, 'b', '{}')",
    "INSERT INTO vector_store_files (vector_store_id, file_id, status, attributes, "
    "chunking_type, max_chunk_tokens, chunk_overlap_tokens, usage_bytes, attempts) "
    "VALUES ('vs_bench', 'file-bench', 'completed', '{}', 'auto', 800, 400, 0, 0)",
]
# `WHERE g > 0` ties each subquery to its row; without it Postgres computes it once.
_GENERATE = f"""
INSERT INTO chunks (vector_store_id, file_id, idx, text, attributes, dims, embedding)
SELECT '{STORE}', '{FILE}', g,
    (SELECT string_agg('w' || floor(exp(random() * ln({VOCAB})))::int, ' ')
       FROM generate_series(1, {WORDS_PER_CHUNK}) WHERE g > 0),
    jsonb_build_object('category', g % 10, 'even', g % 2 = 0),
    {DIMS},
    (SELECT array_agg(random() - 0.5) FROM generate_series(1, {DIMS}) WHERE g > 0)::vector::halfvec
FROM generate_series(CAST(:start AS int), CAST(:stop AS int)) AS g
"""  # noqa: S608


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def query_text(rng: random.Random) -> str:
    # Three words, like a short question's content words: mostly rare, sometimes common.
    return " ".join(f"w{int(rng.lognormvariate(4, 2)) % VOCAB}" for _ in range(3))


async def grow(url: str, start: int, stop: int) -> float:
    engine = create_engine(url, pool_size=1)
    began = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP INDEX IF EXISTS {index_name(DIMS)}"))
        await conn.execute(text(_GENERATE), {"start": start, "stop": stop})
        await conn.execute(text("SET maintenance_work_mem = '512MB'"))
        await conn.execute(text(index_sql(DIMS)))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE chunks"))
    await engine.dispose()
    return time.perf_counter() - began


async def explain(url: str, condition: str, params: dict[str, Any]) -> str:
    """The plans of the gateway's two search statements."""
    engine = create_engine(url, pool_size=1)
    bound = {
        **params,
        "stores": [STORE],
        "qvec": "[" + ",".join("0.01" for _ in range(DIMS)) + "]",
        "n": 10,
        "words": "w3000 w7000",
        "common": [],
    }
    lines: list[str] = []
    async with engine.connect() as conn:
        for sql in (vector_sql(DIMS, condition), text_sql(condition)):
            lines += [row[0] for row in await conn.execute(text("EXPLAIN " + sql), bound)]
    await engine.dispose()
    return "\n".join(lines)


def _figures(timings: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(timings), "p99_ms": percentile(timings, 99)}


async def side_by_side(
    url: str, queries: int, filters: dict[str, Any] | None
) -> tuple[dict[str, float], dict[str, float]]:
    """The gateway's search and bare pgvector on the same rows (top-10 ids, the same
    filter, prepared on one held psycopg connection: the floor this machine sets at this
    moment), query by query with the same vector so that both see the same load, taking
    turns going first; compare ratios, not absolutes."""
    engine = create_engine(url, pool_size=1)
    searches = ReadPool(url, 2, timeout_s=10, name="search")
    rng = random.Random(7)
    condition, params = compile_filter(filters)
    common = await CommonTerms().get(engine)
    await engine.dispose()
    bare = "attributes @> '{\"category\": 3}'" if filters else "TRUE"
    floor_sql = (
        f"SELECT id FROM chunks WHERE dims = {DIMS} AND {bare} "  # noqa: S608
        f"ORDER BY {distance_sql(DIMS, '%s')} LIMIT 10"
    )
    conn = await psycopg.AsyncConnection.connect(
        libpq_url(url), autocommit=True, options=SESSION_OPTIONS
    )
    searched: list[float] = []
    floor: list[float] = []
    results = 0

    async def search(vector: list[float], words: str) -> int:
        hits = await search_vectors(
            searches,
            [STORE],
            words,
            vector,
            max_results=10,
            condition=condition,
            params=params,
            common=common,
        )
        return len(hits)

    async def bare_top10(vector: list[float]) -> None:
        await (await conn.execute(floor_sql, (vector_literal(vector),), prepare=True)).fetchall()

    async with conn, searches:
        for i in range(queries + 20):
            vector = [rng.uniform(-0.5, 0.5) for _ in range(DIMS)]
            words = query_text(rng)
            # Whichever goes second finds the graph's pages for this vector warm in the
            # CPU's caches: take turns going first.
            began = time.perf_counter()
            if i % 2:
                await bare_top10(vector)
                between = time.perf_counter()
                found = await search(vector, words)
                floor_ms, search_ms = between - began, time.perf_counter() - between
            else:
                found = await search(vector, words)
                between = time.perf_counter()
                await bare_top10(vector)
                search_ms, floor_ms = between - began, time.perf_counter() - between
            if i >= 20:  # warm-up not counted
                searched.append(search_ms * 1000)
                floor.append(floor_ms * 1000)
                results += found
    return _figures(searched) | {"mean_hits": results / queries}, _figures(floor)


async def main(sizes: list[int], queries: int) -> None:
    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="rag-bench-"), cleanup_mode="delete")  # type: ignore[attr-defined]
    url = server.get_uri()
    upgrade(url)
    engine = create_engine(url, pool_size=1)
    async with engine.begin() as conn:
        for statement in _SETUP:
            await conn.execute(text(statement))
    await engine.dispose()
    filtered = {"type": "eq", "key": "category", "value": 3}  # keeps 10% of rows
    have = 0
    try:
        for size in sorted(sizes):
            took = await grow(url, have + 1, size)
            have = size
            print(f"\n{size:,} chunks x {DIMS}-d: generated + indexed in {took:.1f} s")
            condition, params = compile_filter(filtered)
            plan = await explain(url, condition, params)
            for index in (index_name(DIMS), "ix_chunks_tsv"):
                uses = "yes" if index in plan else "NO"
                print(f"  {index} used by the filtered search: {uses}")
            for label, spec in (("no filter", None), ("filter 10%", filtered)):
                figures, floor = await side_by_side(url, queries, spec)
                print(
                    f"  {label:<11} search p50 {figures['p50_ms']:6.2f} ms  "
                    f"p99 {figures['p99_ms']:6.2f} ms  hits {figures['mean_hits']:.0f}   |  "
                    f"bare pgvector top-10 (held psycopg connection) "
                    f"p50 {floor['p50_ms']:5.2f} ms  p99 {floor['p99_ms']:5.2f} ms  |  "
                    f"search / bare: p50 {figures['p50_ms'] / floor['p50_ms']:.1f}x  "
                    f"p99 {figures['p99_ms'] / floor['p99_ms']:.1f}x"
                )
    finally:
        server.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.queries))
