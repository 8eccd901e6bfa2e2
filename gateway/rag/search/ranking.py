"""The two rankings hybrid search fuses, a statement each that returns its chunks whole,
best first: each ranking costs one round trip, and the two run at once on two
connections (gateway.rag.search.hybrid).

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

Postgres runs the two statements on two backends in parallel, so a search takes about as
long as the slower ranking rather than both. Through SQLAlchemy's pool the second
connection's checkout and ping cost more than that saved, and both rankings were one
statement; on search's own pool (gateway.db.read_pool) they are worth splitting again
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


# What a search result shows of a chunk `c`, with its file `f`: what `chunk` reads.
_SHOWN = "c.id, c.file_id, f.filename, c.vector_store_id, c.text, c.attributes"


def vector_sql(dims: int, condition: str) -> str:
    """The `:n` chunks of `:stores` nearest to `:qvec` that meet `condition`, nearest
    first. The index scan reads the columns shown (joining `chunks` again for them cost
    as much as the scan at 100k chunks, benchmarks/README.md)."""
    distance = distance_sql(dims)
    return f"""
        SELECT {_SHOWN} FROM (
            SELECT id, file_id, vector_store_id, text, attributes, ({distance})::float8 AS d
            FROM chunks
            WHERE dims = {int(dims)} AND vector_store_id = ANY(:stores) AND ({condition})
            ORDER BY {distance} LIMIT :n
        ) c JOIN files f ON f.id = c.file_id
        ORDER BY c.d, c.id
    """


def text_sql(condition: str) -> str:
    """The `:n` best full-text matches of `:words` less the `:common` ones, best first."""
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
        SELECT {_SHOWN} FROM (
            SELECT id, ts_rank_cd(tsv, (SELECT q FROM query)) AS score FROM matched
            WHERE (SELECT count(*) FROM matched) <= {TEXT_CAP} AND ({condition})
            ORDER BY score DESC, id LIMIT :n
        ) best JOIN chunks c ON c.id = best.id JOIN files f ON f.id = c.file_id
        ORDER BY best.score DESC, best.id
    """


def chunk(row: tuple[Any, ...]) -> Chunk:
    """A row of `vector_sql` or `text_sql`."""
    id_, file_id, filename, store_id, text, attributes = row
    return Chunk(id_, file_id, filename, store_id, text, dict(attributes or {}))
