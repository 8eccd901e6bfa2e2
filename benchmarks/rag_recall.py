"""Recall@10 of the vector ranking against exact search, on real embeddings of real text,
for a sweep of the HNSW settings, with latency alongside.

The corpus (benchmarks.rag_corpus: the standard library's docstrings and pydoc's help
topics, chunked as the gateway chunks, embedded once with all-MiniLM-L6-v2 on a real vLLM
CPU engine and cached) is loaded into embedded Postgres + pgvector. Each chunk's file
carries an attribute `bucket` (its document's number modulo 10), so that a filter
`bucket = 3` keeps about a tenth of the chunks, as a filter on a file attribute would.

The truth is the same statement the gateway runs (gateway.rag.search.ranking.vector_sql)
with index scans disabled: exact distances over every row the filter keeps. Each setting
runs the gateway's statement, prepared, on one held connection; recall@10 is the share
of the exact top 10 it returns (fewer rows than 10 count as misses, so an iterative scan
that gives up early shows up here), averaged over the queries.

    python -m benchmarks.rag_recall                       # the sweep, ~2-4 min once embedded
    python -m benchmarks.rag_recall --m 16 --ef-construction 64 --ef-search 40
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from benchmarks.rag_corpus import Corpus, load
from benchmarks.rag_search import percentile
from gateway.db.engine import SESSION_OPTIONS
from gateway.db.migrate import upgrade
from gateway.db.read_pool import driver_sql
from gateway.db.url import libpq_url
from gateway.rag.index import index_name, index_sql, vector_literal
from gateway.rag.search.filters import compile_filter
from gateway.rag.search.ranking import vector_sql

STORE = "vs_recall"
K = 10
BUCKETS = 10
FILTER = {"type": "eq", "key": "bucket", "value": 3}


@dataclass(frozen=True)
class Row:
    m: int
    ef_construction: int
    build_s: float
    ef_search: int
    recall: float
    recall_filtered: float  # with the plan Postgres chooses
    recall_forced: float  # with the HNSW index forced: an iterative scan
    short_forced: int  # filtered queries answered with fewer than K rows
    p50_ms: float
    p99_ms: float
    p50_filtered_ms: float
    p99_filtered_ms: float


async def fill(conn: psycopg.AsyncConnection[Any], corpus: Corpus) -> float:
    """The corpus as one store of files (one per document); returns the filter's share."""
    files = sorted(set(corpus.docs))
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO vector_stores (id, owner, name, metadata) VALUES (%s, NULL, 'r', '{}')",
            (STORE,),
        )
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO files (id, owner, filename, purpose, bytes) "
                "VALUES (%s, NULL, %s, 'assistants', 0)",
                [(f"file-{d}", f"doc{d}.txt") for d in files],
            )
            await cur.executemany(
                "INSERT INTO vector_store_files (vector_store_id, file_id, status, attributes, "
                "chunking_type, max_chunk_tokens, chunk_overlap_tokens, usage_bytes, attempts) "
                "VALUES (%s, %s, 'completed', %s, 'static', 128, 32, 0, 0)",
                [(STORE, f"file-{d}", f'{{"bucket": {d % BUCKETS}}}') for d in files],
            )
        async with conn.cursor().copy(
            "COPY chunks (vector_store_id, file_id, idx, text, attributes, dims, embedding) "
            "FROM STDIN"
        ) as copy:
            for i, (text, doc) in enumerate(zip(corpus.texts, corpus.docs, strict=True)):
                vector = vector_literal(corpus.vectors[i].tolist())
                attributes = f'{{"bucket": {doc % BUCKETS}}}'
                dims = corpus.vectors.shape[1]
                await copy.write_row((STORE, f"file-{doc}", i, text, attributes, dims, vector))
    await conn.execute("VACUUM ANALYZE chunks")
    kept = sum(1 for doc in corpus.docs if doc % BUCKETS == FILTER["value"])
    return kept / len(corpus.docs)


async def top_ids(
    conn: psycopg.AsyncConnection[Any], sql: str, params: dict[str, Any], vectors: np.ndarray
) -> tuple[list[list[int]], list[float]]:
    """Each query's ranked ids and the statement's latency in ms."""
    found: list[list[int]] = []
    timings: list[float] = []
    for vector in vectors:
        bound = {**params, "qvec": vector_literal(vector.tolist())}
        began = time.perf_counter()
        rows = await (await conn.execute(sql, bound, prepare=True)).fetchall()
        timings.append((time.perf_counter() - began) * 1000)
        found.append([row[0] for row in rows])
    return found, timings


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return statistics.fmean(
        len(set(f[:K]) & set(t[:K])) / max(1, min(K, len(t)))
        for f, t in zip(found, truth, strict=True)
    )


async def sweep(
    url: str, corpus: Corpus, ms: list[int], efcs: list[int], efss: list[int]
) -> tuple[float, list[Row]]:
    dims = corpus.vectors.shape[1]
    plain = driver_sql(vector_sql(dims, "TRUE"))
    condition, fparams = compile_filter(FILTER)
    filtered = driver_sql(vector_sql(dims, condition))
    # Its own statement: a prepared statement keeps the plan it was given, whatever the
    # planner settings say later.
    forced = "/* HNSW forced */ " + filtered
    base = {"stores": [STORE], "n": K}
    conn = await psycopg.AsyncConnection.connect(
        libpq_url(url), autocommit=True, options=SESSION_OPTIONS
    )
    rows: list[Row] = []
    async with conn:
        share = await fill(conn, corpus)
        await conn.execute("SET enable_indexscan = off")
        truth, _ = await top_ids(conn, plain, base, corpus.query_vectors)
        truth_f, _ = await top_ids(conn, filtered, base | fparams, corpus.query_vectors)
        await conn.execute("RESET enable_indexscan")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for m, efc in itertools.product(ms, efcs):
            await conn.execute(f"DROP INDEX IF EXISTS {index_name(dims)}")
            began = time.perf_counter()
            await conn.execute(index_sql(dims, m, efc))
            build_s = time.perf_counter() - began
            for efs in efss:
                await conn.execute(f"SET hnsw.ef_search = {int(efs)}")
                await top_ids(conn, plain, base, corpus.query_vectors[:20])  # warm-up
                found, times = await top_ids(conn, plain, base, corpus.query_vectors)
                found_p, _ = await top_ids(conn, filtered, base | fparams, corpus.query_vectors)
                # A small store's filter is served exactly (bitmap scan of the attributes
                # and a sort); a large one's by the HNSW index and an iterative scan, forced
                # here so that the sweep measures it too.
                await conn.execute("SET enable_bitmapscan = off; SET enable_seqscan = off")
                found_f, times_f = await top_ids(conn, forced, base | fparams, corpus.query_vectors)
                await conn.execute("RESET enable_bitmapscan; RESET enable_seqscan")
                rows.append(
                    Row(
                        m, efc, build_s, efs,
                        recall(found, truth),
                        recall(found_p, truth_f),
                        recall(found_f, truth_f),
                        sum(1 for f in found_f if len(f) < K),
                        statistics.median(times), percentile(times, 99),
                        statistics.median(times_f), percentile(times_f, 99),
                    )
                )  # fmt: skip
                print(_line(rows[-1]), flush=True)
    return share, rows


def _line(row: Row) -> str:
    return (
        f"| {row.m} | {row.ef_construction} | {row.build_s:.1f} | {row.ef_search} | "
        f"{row.recall:.3f} | {row.recall_filtered:.3f} | {row.recall_forced:.3f} | "
        f"{row.short_forced} | "
        f"{row.p50_ms:.2f} / {row.p99_ms:.2f} | "
        f"{row.p50_filtered_ms:.2f} / {row.p99_filtered_ms:.2f} |"
    )


HEADER = (
    "| m | ef_construction | build s | ef_search | recall@10 | recall@10 filter, planner "
    "| recall@10 filter, HNSW | short answers, HNSW filter | ms p50 / p99 "
    "| ms p50 / p99 HNSW filter |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


async def main(args: argparse.Namespace) -> None:
    import pgserver

    corpus = load(engine_url=args.engine_url)
    server = pgserver.get_server(tempfile.mkdtemp(prefix="rag-recall-"), cleanup_mode="delete")  # type: ignore[attr-defined]
    try:
        url = server.get_uri()
        upgrade(url)
        began = time.perf_counter()
        print(
            f"{len(corpus.texts):,} chunks x {corpus.vectors.shape[1]}-d from "
            f"{len(set(corpus.docs))} documents, {len(corpus.queries)} queries"
        )
        print(HEADER)
        share, _ = await sweep(url, corpus, args.m, args.ef_construction, args.ef_search)
        took = time.perf_counter() - began
        print(f"filter keeps {share:.1%} of the chunks; sweep took {took:.0f} s")
    finally:
        server.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--m", type=int, nargs="+", default=[8, 16, 24, 32])
    parser.add_argument("--ef-construction", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[10, 20, 40, 64, 100])
    parser.add_argument("--engine-url", help="a running engine serving all-minilm-l6-v2")
    asyncio.run(main(parser.parse_args()))
