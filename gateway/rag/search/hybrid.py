"""Hybrid search over vector stores: pgvector cosine and full text, fused by rank.

Two rankings over the stores asked for and the attribute filter, a statement each, run
at once (gateway.rag.search.ranking): the nearest chunks by cosine distance (HNSW on
`halfvec`) and the best full-text matches (`tsvector` + GIN). Reciprocal rank fusion
merges them (gateway.rag.search.fusion); `score` is the fused score in 0..1, and
`score_threshold` applies to it. The query's embedding, the ownership check
(gateway.rag.search.scope) and the lookup of common words also run side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.db.read_pool import ReadPool
from gateway.rag.access import caller_for
from gateway.rag.index import vector_literal
from gateway.rag.metering import Payer, embed_for
from gateway.rag.resources import Retrieval
from gateway.rag.search.filters import compile_filter
from gateway.rag.search.fusion import rrf, text_query
from gateway.rag.search.ranking import Chunk, chunk, text_sql, vector_sql
from gateway.rag.search.scope import check_stores

_MIN_CANDIDATES = 10
_MAX_CANDIDATES = 100


@dataclass(frozen=True)
class SearchHit:
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any]
    vector_store_id: str


async def search_stores(
    rag: Retrieval,
    payer: Payer,
    store_ids: list[str],
    query: str,
    *,
    max_results: int = 10,
    filters: dict[str, Any] | None = None,
    score_threshold: float | None = None,
) -> list[SearchHit]:
    """The best chunks across `store_ids` for `query`, best first; NotFound for a store the
    payer's key cannot see (or that does not exist); InvalidRequest for a malformed
    filter. The query's embedding is admitted and metered for the payer."""
    db = rag.db
    condition, params = compile_filter(filters)
    ids = list(dict.fromkeys(store_ids))
    if not ids:
        return []
    # Embedding, ownership check and common words overlap; all must succeed.
    vectors, _, common = await asyncio.gather(
        embed_for(rag, payer, [query]),
        check_stores(db, caller_for(payer.key), ids),
        rag.common_terms.get(db),
    )
    return await search_vectors(
        rag.search,
        ids,
        query,
        vectors[0],
        max_results=max_results,
        condition=condition,
        params=params,
        score_threshold=score_threshold,
        common=common,
    )


async def search_vectors(
    pool: ReadPool,
    store_ids: list[str],
    query: str,
    vector: list[float],
    *,
    max_results: int = 10,
    condition: str = "TRUE",
    params: dict[str, Any] | None = None,
    score_threshold: float | None = None,
    common: Sequence[str] = (),
) -> list[SearchHit]:
    """Search with a ready query vector (what `search_stores` does after embedding);
    `common` are the lexemes the text ranking leaves out (gateway.rag.common_terms).
    The two rankings run at once, a statement each on a connection of search's own pool
    (gateway.rag.search.ranking, gateway.db.read_pool)."""
    words = text_query(query)
    bound = {**(params or {}), "stores": store_ids, "n": _candidates(max_results)}
    statements = [
        pool.fetch_all(vector_sql(len(vector), condition), bound | {"qvec": vector_literal(vector)})
    ]
    if words is not None:  # an empty text ranking still halves what the vector one scores
        statements.append(
            pool.fetch_all(text_sql(condition), bound | {"words": words, "common": list(common)})
        )
    rankings = [[chunk(row) for row in rows] for rows in await asyncio.gather(*statements)]
    chunks = {c.id: c for ranking in rankings for c in ranking}
    fused = rrf([[c.id for c in ranking] for ranking in rankings])
    if score_threshold is not None:
        fused = [f for f in fused if f.score >= score_threshold]
    return [_hit(chunks[f.item], f.score) for f in fused[:max_results]]


def _candidates(max_results: int) -> int:
    """Chunks each ranking contributes: the page asked for (as Elasticsearch's RRF
    `rank_window_size`), at least `_MIN_CANDIDATES`. A filtered vector query costs about
    in proportion (the iterative scan visits ~n / selectivity nodes)."""
    return min(_MAX_CANDIDATES, max(_MIN_CANDIDATES, max_results))


def _hit(chunk: Chunk, score: float) -> SearchHit:
    return SearchHit(
        file_id=chunk.file_id,
        filename=chunk.filename,
        score=round(score, 6),
        text=chunk.text,
        attributes=chunk.attributes,
        vector_store_id=chunk.vector_store_id,
    )
