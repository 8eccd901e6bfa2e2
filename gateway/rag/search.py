"""Hybrid search over vector stores: pgvector cosine and full text, fused by rank.

Two rankings over the stores asked for and the attribute filter, computed in parallel
(gateway.rag.ranking): the nearest chunks by cosine distance (HNSW on `halfvec`) and the
best full-text matches (`tsvector` + GIN). Reciprocal rank fusion merges them
(gateway.rag.fusion); `score` is the fused score in 0..1, and `score_threshold` applies
to it. The query's embedding and the ownership check also run side by side.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import NotFound
from gateway.keys.record import KeyRecord
from gateway.rag.access import NEEDS_DATABASE, Caller, NeedsDatabase, caller_for
from gateway.rag.embeddings import embed
from gateway.rag.filters import compile_filter
from gateway.rag.fusion import rrf, text_query
from gateway.rag.jobs import vector_literal
from gateway.rag.ranking import text_ranking, vector_ranking
from gateway.services import Services

# Candidates each ranking contributes to the fusion. Filtered vector queries cost about
# in proportion (the iterative scan visits ~n / selectivity nodes).
_MIN_CANDIDATES = 20
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
    services: Services,
    key: KeyRecord | None,
    store_ids: list[str],
    query: str,
    *,
    max_results: int = 10,
    filters: dict[str, Any] | None = None,
    score_threshold: float | None = None,
) -> list[SearchHit]:
    """The best chunks across `store_ids` for `query`, best first; NotFound for a store the
    key cannot see (or that does not exist); InvalidRequest for a malformed filter."""
    db = services.db
    if db is None:
        raise NeedsDatabase(NEEDS_DATABASE)
    condition, params = compile_filter(filters)
    ids = list(dict.fromkeys(store_ids))
    if not ids:
        return []
    # The query's embedding and the ownership check overlap; both must succeed.
    vectors, _ = await asyncio.gather(
        embed(services, [query]), _check_stores(db, caller_for(key), ids)
    )
    return await search_vectors(
        db,
        ids,
        query,
        vectors[0],
        max_results=max_results,
        condition=condition,
        params=params,
        score_threshold=score_threshold,
    )


async def _check_stores(db: AsyncEngine, who: Caller, ids: list[str]) -> None:
    """404 for the first store the caller cannot reach; marks the others active."""
    params: dict[str, Any] = {"ids": ids}
    sql = f"""
        WITH visible AS (
            SELECT id FROM vector_stores WHERE id = ANY(:ids) AND {who.condition("owner", params)}
        ), touched AS (
            UPDATE vector_stores SET last_active_at = now()
            WHERE id IN (SELECT id FROM visible) AND last_active_at < now() - interval '1 minute'
        )
        SELECT id FROM visible
    """
    async with db.begin() as conn:
        found = set((await conn.execute(text(sql), params)).scalars().all())
    for store_id in ids:
        if store_id not in found:
            raise NotFound(
                f"No vector store found with id '{store_id}'.",
                param="vector_store_ids",
                code="vector_store_not_found",
            )


async def search_vectors(
    db: AsyncEngine,
    store_ids: list[str],
    query: str,
    vector: list[float],
    *,
    max_results: int = 10,
    condition: str = "TRUE",
    params: dict[str, Any] | None = None,
    score_threshold: float | None = None,
) -> list[SearchHit]:
    """Search with a ready query vector (what `search_stores` does after embedding)."""
    bound = {
        **(params or {}),
        "stores": store_ids,
        "n": min(_MAX_CANDIDATES, max(_MIN_CANDIDATES, 2 * max_results)),
    }
    tsq = text_query(query)
    async with db.connect() as vconn, db.connect() as tconn:
        by_vector = vector_ranking(vconn, vector_literal(vector), len(vector), condition, bound)
        if tsq is None:
            rankings = [await by_vector]
        else:
            by_text = text_ranking(tconn, tsq, condition, bound)
            rankings = list(await asyncio.gather(by_vector, by_text))
        fused = rrf(rankings)
        if score_threshold is not None:
            fused = [f for f in fused if f.score >= score_threshold]
        fused = fused[:max_results]
        if not fused:
            return []
        details = await vconn.execute(
            text(
                "SELECT c.id, c.file_id, c.vector_store_id, c.text, c.attributes, f.filename "
                "FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id = ANY(:ids)"
            ),
            {"ids": [f.item for f in fused]},
        )
        by_id = {row.id: row for row in details}
    return [
        SearchHit(
            file_id=row.file_id,
            filename=row.filename,
            score=round(f.score, 6),
            text=row.text,
            attributes=dict(row.attributes or {}),
            vector_store_id=row.vector_store_id,
        )
        for f in fused
        if (row := by_id.get(f.item)) is not None
    ]
