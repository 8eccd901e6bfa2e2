"""The two rankings hybrid search fuses, in one SQL statement that returns each candidate
chunk once, whole, with its rank in each ranking: a search costs one round trip.

Vector: nearest chunks by cosine distance through the HNSW index of the query's
dimension. `hnsw.iterative_scan = relaxed_order` and `hnsw.ef_search` (pgvector 0.8; set
when a connection starts, see gateway.db.engine) keep scanning the graph until a filtered
query has its `n` rows; the rows are ranked exactly here (relaxed order is only nearly
sorted).

Text: `tsvector @@ tsquery` through the GIN index, ranked by `ts_rank_cd`. The query's
words are stemmed by Postgres and those too common to narrow anything are left out
(gateway.rag.common_terms). Ranking reads every match's tsvector, so a query still
matching more than `TEXT_CAP` chunks of the stores gives no text ranking rather than a
cost growing with the store.

Both rankings used to run as two statements on two connections at once; on a small box
the second connection's checkout, ping and round trip cost more than the overlap saved
(benchmarks/README.md, "Vector-store search").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Candidate:
    chunk: Chunk
    vector_rank: int | None  # 1 = nearest; None: not among the vector ranking's n
    text_rank: int | None


def vector_sql(dims: int, condition: str) -> str:
    """(id, rank) of the `:n` nearest chunks of `:stores` to `:qvec` that meet `condition`."""
    distance = distance_sql(dims)
    return f"""
        SELECT id, row_number() OVER (ORDER BY d, id) AS rank FROM (
            SELECT id, ({distance})::float8 AS d FROM chunks
            WHERE dims = {int(dims)} AND vector_store_id = ANY(:stores) AND ({condition})
            ORDER BY {distance} LIMIT :n
        ) nearest
    """


def text_sql(condition: str) -> str:
    """(id, rank) of the `:n` best full-text matches of `:words` less the `:common` ones."""
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
    return f"""
        WITH query AS MATERIALIZED ({tsquery}),
        matched AS MATERIALIZED (
            SELECT id, tsv, attributes FROM chunks
            WHERE tsv @@ (SELECT q FROM query) AND vector_store_id = ANY(:stores)
            LIMIT {TEXT_CAP + 1}
        )
        SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
            SELECT id, ts_rank_cd(tsv, (SELECT q FROM query)) AS score FROM matched
            WHERE (SELECT count(*) FROM matched) <= {TEXT_CAP} AND ({condition})
            ORDER BY score DESC, id LIMIT :n
        ) best
    """


def search_sql(dims: int, condition: str, *, with_text: bool) -> str:
    """Both rankings (or the vector one alone), joined to what a search result shows: one
    row per candidate with `vector_rank` and `text_rank` (NULL where it is not ranked)."""
    nearest = vector_sql(dims, condition)
    if with_text:
        ranked = f"""
            SELECT id, v.rank AS vector_rank, t.rank AS text_rank
            FROM ({nearest}) v FULL JOIN ({text_sql(condition)}) t USING (id)
        """
    else:
        ranked = f"SELECT id, rank AS vector_rank, NULL::bigint AS text_rank FROM ({nearest}) v"
    return f"""
        SELECT r.id, r.vector_rank, r.text_rank, c.file_id, f.filename, c.vector_store_id,
            c.text, c.attributes
        FROM ({ranked}) r JOIN chunks c ON c.id = r.id JOIN files f ON f.id = c.file_id
    """


def candidate(row: tuple[Any, ...]) -> Candidate:
    """A row of `search_sql`, in its column order."""
    id_, vector_rank, text_rank, file_id, filename, store_id, text, attributes = row
    return Candidate(
        Chunk(id_, file_id, filename, store_id, text, dict(attributes or {})),
        vector_rank,
        text_rank,
    )
