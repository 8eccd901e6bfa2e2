"""The two rankings hybrid search fuses, each one SQL statement on its own connection so
that Postgres computes them in parallel.

Vector: nearest chunks by cosine distance through the HNSW index of the query's
dimension; `hnsw.iterative_scan = relaxed_order` (pgvector 0.8) keeps scanning the graph
until a filtered query has its `n` rows, and the rows are re-sorted exactly here.

Text: `tsvector @@ tsquery` through the GIN index, ranked by `ts_rank_cd`. Ranking reads
every match's tsvector, so a query matching more than `TEXT_CAP` chunks (words too common
to tell chunks apart) gives no text ranking rather than a cost growing with the store.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.rag.index import distance_sql

TEXT_CONFIG = "english"
TEXT_CAP = 200


def vector_sql(dims: int, condition: str) -> str:
    distance = distance_sql(dims)
    return f"""
        SELECT id, ({distance})::float8 AS distance FROM chunks
        WHERE dims = {int(dims)} AND vector_store_id = ANY(:stores) AND ({condition})
        ORDER BY {distance} LIMIT :n
    """


def text_sql(condition: str) -> str:
    # A scalar subquery is computed once and can drive the GIN index.
    tsquery = f"(SELECT to_tsquery('{TEXT_CONFIG}', :tsq))"
    return f"""
        SELECT id FROM (
            SELECT id, tsv, count(*) OVER () AS total FROM (
                SELECT id, tsv FROM chunks
                WHERE tsv @@ {tsquery} AND vector_store_id = ANY(:stores) AND ({condition})
                LIMIT {TEXT_CAP + 1}
            ) capped
        ) matched
        WHERE total <= {TEXT_CAP}
        ORDER BY ts_rank_cd(tsv, {tsquery}) DESC, id LIMIT :n
    """


async def vector_ranking(
    conn: AsyncConnection, vector: str, dims: int, condition: str, params: dict[str, Any]
) -> list[int]:
    """Chunk ids, nearest first; `vector` is a halfvec literal, params hold stores and n."""
    await conn.execute(
        text(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.ef_search', :ef, true)"
        ),
        {"ef": str(max(40, int(params["n"])))},
    )
    rows = (await conn.execute(text(vector_sql(dims, condition)), {**params, "qvec": vector})).all()
    # Relaxed order is nearly sorted; the fusion wants the exact order.
    return [row[0] for row in sorted(rows, key=lambda row: row[1])]


async def text_ranking(
    conn: AsyncConnection, tsq: str, condition: str, params: dict[str, Any]
) -> list[int]:
    # The planner prices `tsv @@ q` as cheap and may choose to read (and detoast) every
    # row's tsvector instead of using the GIN index: rule sequential scans out.
    await conn.execute(text("SELECT set_config('enable_seqscan', 'off', true)"))
    rows = await conn.execute(text(text_sql(condition)), {**params, "tsq": tsq})
    return [row[0] for row in rows]
