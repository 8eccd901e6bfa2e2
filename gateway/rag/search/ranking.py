"""The two rankings hybrid search fuses, each one SQL statement on its own connection so
that Postgres computes them in parallel, and each returning its chunks whole, so that a
search costs one round trip per ranking.

Vector: nearest chunks by cosine distance through the HNSW index of the query's
dimension. `hnsw.iterative_scan = relaxed_order` (pgvector 0.8; set on every connection,
see gateway.db.engine) keeps scanning the graph until a filtered query has its `n` rows;
the rows are re-sorted exactly here.

Text: `tsvector @@ tsquery` through the GIN index, ranked by `ts_rank_cd`. The query's
words are stemmed by Postgres and those too common to narrow anything are left out
(gateway.rag.common_terms). Ranking reads every match's tsvector, so a query still
matching more than `TEXT_CAP` chunks of the stores gives no text ranking rather than a
cost growing with the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.rag.index import distance_sql

TEXT_CONFIG = "english"
TEXT_CAP = 200


@dataclass(frozen=True, slots=True)
class Chunk:
    id: int
    file_id: str
    filename: str
    vector_store_id: str
    text: str
    attributes: dict[str, Any]


def _whole(ranked: str) -> str:
    """`ranked` (id, score) joined to what a search result shows."""
    return f"""
        SELECT r.id, r.score, c.file_id, f.filename, c.vector_store_id, c.text, c.attributes
        FROM ({ranked}) r JOIN chunks c ON c.id = r.id JOIN files f ON f.id = c.file_id
    """


def vector_sql(dims: int, condition: str) -> str:
    distance = distance_sql(dims)
    return _whole(f"""
        SELECT id, ({distance})::float8 AS score FROM chunks
        WHERE dims = {int(dims)} AND vector_store_id = ANY(:stores) AND ({condition})
        ORDER BY {distance} LIMIT :n
    """)


def text_sql(condition: str) -> str:
    # The query's lexemes, less the common ones, ANDed; NULL (no match) when none is left.
    # 'simple' keeps the already stemmed lexemes as they are.
    tsquery = f"""
        SELECT plainto_tsquery('simple', string_agg(lexeme, ' ')) AS q
        FROM unnest(to_tsvector('{TEXT_CONFIG}', :words))
        WHERE lexeme <> ALL(CAST(:common AS text[]))
    """
    # The cap counts the words' matches in the stores, and the attribute filter applies to
    # those few: the cost follows the words, never the share of rows the filter keeps.
    # A scalar subquery is computed once and can drive the GIN index.
    return _whole(f"""
        WITH query AS MATERIALIZED ({tsquery}),
        matched AS MATERIALIZED (
            SELECT id, tsv, attributes FROM chunks
            WHERE tsv @@ (SELECT q FROM query) AND vector_store_id = ANY(:stores)
            LIMIT {TEXT_CAP + 1}
        )
        SELECT id, ts_rank_cd(tsv, (SELECT q FROM query)) AS score FROM matched
        WHERE (SELECT count(*) FROM matched) <= {TEXT_CAP} AND ({condition})
        ORDER BY score DESC, id LIMIT :n
    """)


async def vector_ranking(
    conn: AsyncConnection, vector: str, dims: int, condition: str, params: dict[str, Any]
) -> list[Chunk]:
    """Chunks, nearest first; `vector` is a halfvec literal, params hold stores and n."""
    rows = await conn.execute(text(vector_sql(dims, condition)), {**params, "qvec": vector})
    # Relaxed order is nearly sorted, and the join keeps no order: sort by distance.
    return [_chunk(row) for row in sorted(rows, key=lambda row: (row.score, row.id))]


async def text_ranking(
    conn: AsyncConnection,
    words: str,
    common: Sequence[str],
    condition: str,
    params: dict[str, Any],
) -> list[Chunk]:
    """Chunks containing all of `words` but the `common` lexemes, best ranked first."""
    rows = await conn.execute(
        text(text_sql(condition)), {**params, "words": words, "common": list(common)}
    )
    return [_chunk(row) for row in sorted(rows, key=lambda row: (-row.score, row.id))]


def _chunk(row: Any) -> Chunk:
    return Chunk(
        id=row.id,
        file_id=row.file_id,
        filename=row.filename,
        vector_store_id=row.vector_store_id,
        text=row.text,
        attributes=dict(row.attributes or {}),
    )
