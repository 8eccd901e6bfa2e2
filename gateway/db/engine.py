"""The async engine and session factory, created in the app's lifespan."""

from __future__ import annotations

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from gateway.db.url import sqlalchemy_url

# Set at connection start, so that no search spends a round trip on them (they only
# affect HNSW scans, which only search makes): pgvector's iterative index scans let a
# filtered vector search fill its page, and ef_search is the candidate list a scan keeps,
# chosen by recall against exact search (benchmarks/rag_recall.py, gateway.rag.index).
HNSW_EF_SEARCH = 64
SESSION_OPTIONS = f"-c hnsw.iterative_scan=relaxed_order -c hnsw.ef_search={HNSW_EF_SEARCH}"


def with_session_options(url: str) -> tuple[URL, str]:
    """`url` without its `?options=`, and the libpq options a connection starts with: the
    URL's own (kept), then ours."""
    parsed = sqlalchemy_url(url)
    given = parsed.query.get("options", ())
    options = " ".join([*([given] if isinstance(given, str) else given), SESSION_OPTIONS])
    return parsed.difference_update_query(["options"]), options


def create_engine(
    url: str,
    pool_size: int = 10,
    *,
    max_overflow: int | None = None,
    pool_timeout: float = 30.0,
) -> AsyncEngine:
    """`max_overflow` defaults to `pool_size` (bursts may double the pool); a pool that
    must stay a hard bound (retrieval's, gateway.rag.resources) passes 0."""
    parsed, options = with_session_options(url)
    return create_async_engine(
        parsed,
        connect_args={"options": options},
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,  # a restarted Postgres must not cost the next request an error
        pool_recycle=1800,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)
