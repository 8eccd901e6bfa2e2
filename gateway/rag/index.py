"""One HNSW index per embedding dimension, created the first time chunks of it arrive.

The `embedding` column is an untyped `halfvec`, so a model change needs no migration; each
dimension gets a partial expression index that queries match by casting the same way:

    ... WHERE dims = 384 ORDER BY (embedding::halfvec(384)) <=> $1 LIMIT n

The build parameters (`HNSW_M`, `HNSW_EF_CONSTRUCTION`) and the search's `hnsw.ef_search`
(gateway.db.engine) were chosen by recall@10 against exact search on real embeddings
(benchmarks/rag_recall.py; the table is in benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# pgvector indexes halfvec up to 4,000 dimensions; beyond that search scans exactly.
MAX_INDEXED_DIMS = 4000
# pgvector's defaults (m 16, ef_construction 64) until the measurement says otherwise.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
_LOCK = 727275  # serialises index creation across replicas (the migration lock is 727274)


def index_name(dims: int) -> str:
    return f"ix_chunks_hnsw_{int(dims)}"


def vector_literal(vector: Sequence[float]) -> str:
    """A vector as the text `CAST(... AS halfvec)` reads, for the chunks' `embedding`."""
    return "[" + ",".join(f"{x:.6g}" for x in vector) + "]"


def index_sql(dims: int, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION) -> str:
    """The HNSW index of `dims`, as the gateway builds it (benchmarks vary m and
    ef_construction)."""
    d = int(dims)
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(d)} ON chunks USING hnsw "
        f"((embedding::halfvec({d})) halfvec_cosine_ops) "
        f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) WHERE dims = {d}"
    )


def distance_sql(dims: int, vector_param: str = ":qvec") -> str:
    """The ordering expression an index of `dims` serves (dims is an int, never user text)."""
    d = int(dims)
    return f"(embedding::halfvec({d})) <=> CAST({vector_param} AS halfvec({d}))"


async def ensure_index(db: AsyncEngine, dims: int, known: set[int]) -> None:
    """Create the index for `dims` unless it exists; `known` caches the answer per process."""
    if dims in known or dims > MAX_INDEXED_DIMS:
        return
    name = index_name(dims)
    async with db.begin() as conn:
        exists = (await conn.execute(text("SELECT to_regclass(:n)"), {"n": name})).scalar()
        if exists is None:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
            await conn.execute(text(index_sql(dims)))
    known.add(dims)
