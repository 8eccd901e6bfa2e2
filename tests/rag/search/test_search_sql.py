"""The search SQL on real pgvector: the per-dimension HNSW index and the GIN index serve it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.engine import HNSW_EF_SEARCH, create_engine
from gateway.db.read_pool import ReadPool, driver_sql
from gateway.rag.common_terms import CommonTerms, too_common
from gateway.rag.index import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    ensure_index,
    index_name,
    vector_literal,
)
from gateway.rag.search.filters import compile_filter
from gateway.rag.search.fusion import text_query
from gateway.rag.search.hybrid import search_vectors
from gateway.rag.search.ranking import text_sql, vector_sql

DIMS = 8
SETUP = [
    "INSERT INTO files (id, filename, purpose, bytes) VALUES ('file-1', 'f.txt', 'assistants', 0)",
    "INSERT INTO vector_stores (id, name, metadata) VALUES ('vs_1', 's', '{}')",
    "INSERT INTO vector_store_files (vector_store_id, file_id, status, attributes, chunking_type,"
    " max_chunk_tokens, chunk_overlap_tokens, usage_bytes, attempts)"
    " VALUES ('vs_1', 'file-1', 'completed', '{}', 'auto', 800, 400, 0, 0)",
    """INSERT INTO chunks (vector_store_id, file_id, idx, text, attributes, dims, embedding)
    SELECT 'vs_1', 'file-1', g, 'chunk number ' || g || CASE WHEN g = 7 THEN ' zebra' ELSE '' END
        -- a passage's worth of distinct words, so that the planner prices rows as real ones
        || ' ' || (SELECT string_agg(md5(random()::text), ' ')
                   FROM generate_series(1, 40) WHERE g > 0),
        jsonb_build_object('n', g % 10), 8,
        (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE g > 0)::vector::halfvec
    FROM generate_series(1, 2000) AS g""",
]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    known: set[int] = set()
    await ensure_index(engine, DIMS, known)
    await ensure_index(engine, DIMS, known)  # idempotent, and cached
    async with engine.begin() as conn:
        for statement in SETUP:
            await conn.execute(text(statement))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE chunks"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def pool(db: AsyncEngine, database_url: str) -> AsyncIterator[ReadPool]:
    async with ReadPool(database_url, 2, timeout_s=5, name="search") as searches:
        yield searches


async def plan(db: AsyncEngine, filters: dict[str, object] | None, query: str) -> str:
    condition, params = compile_filter(filters)
    bound = {
        **params,
        "stores": ["vs_1"],
        "qvec": vector_literal([0.5] * DIMS),
        "n": 10,
        "words": text_query(query),
        "common": [],
    }
    lines: list[str] = []
    async with db.connect() as conn:
        for sql in (vector_sql(DIMS, condition), text_sql(condition)):
            lines += [row[0] for row in await conn.execute(text("EXPLAIN " + sql), bound)]
    return "\n".join(lines)


async def test_the_indexes_serve_both_rankings(db: AsyncEngine) -> None:
    explained = await plan(db, None, "zebra")
    assert f"Index Scan using {index_name(DIMS)}" in explained, explained
    assert "ix_chunks_tsv" in explained, explained
    # With a selective filter on a small table the planner may rather read the filter's
    # rows through the attributes index and sort them exactly; either way, an index.
    explained = await plan(db, {"type": "eq", "key": "n", "value": 3}, "zebra")
    assert index_name(DIMS) in explained or "ix_chunks_attributes" in explained, explained
    assert "Seq Scan" not in explained


async def test_search_vectors_fuses_and_filters(pool: ReadPool) -> None:
    hits = await search_vectors(pool, ["vs_1"], "zebra", [0.5] * DIMS, max_results=5)
    assert len(hits) == 5
    # First in the text ranking: as good as the nearest vector (ties keep vector first).
    assert any(h.text.startswith("chunk number 7 zebra ") for h in hits[:2])
    assert hits[0].filename == "f.txt" and hits[0].vector_store_id == "vs_1"
    assert all(0 < h.score <= 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    condition, params = compile_filter({"type": "eq", "key": "n", "value": 3})
    filtered = await search_vectors(
        pool, ["vs_1"], "chunk", [0.5] * DIMS, max_results=50, condition=condition, params=params
    )
    # Iterative scan: a filter keeping 10% still fills the page.
    assert len(filtered) == 50 and all(h.attributes == {"n": 3} for h in filtered)
    assert await search_vectors(pool, ["vs_other"], "zebra", [0.5] * DIMS) == []
    # Another embedding dimension has no rows here: only the text ranking can answer.
    other = await search_vectors(pool, ["vs_1"], "zebra", [0.5] * 16)
    assert [h.text.split()[:4] for h in other] == [["chunk", "number", "7", "zebra"]]


async def test_common_words_are_read_from_the_statistics_and_left_out(
    db: AsyncEngine, pool: ReadPool
) -> None:
    common = await CommonTerms().get(db)
    # 'chunk' and 'number' are in every row; 'zebra' in one; the md5 words in one each.
    assert {"chunk", "number"} <= set(common) and "zebra" not in common
    # A dimension no chunk has: the text ranking alone answers.
    only_text = [0.5] * 16
    # The rare word still decides the match; the common ones cost nothing.
    found = await search_vectors(pool, ["vs_1"], "number chunk zebra", only_text, common=common)
    assert [h.text.split()[:4] for h in found] == [["chunk", "number", "7", "zebra"]]
    # Nothing but common words: no text ranking (the vector ranking answers).
    assert await search_vectors(pool, ["vs_1"], "chunk number", only_text, common=common) == []


def test_too_common_is_a_share_of_the_rows_capped_in_absolute_terms() -> None:
    lexemes, freqs = ["a", "b", "c"], [0.5, 0.004, 0.02, 0.004, 0.5, 0.0]  # + min, max, nulls
    assert too_common(lexemes, freqs, rows=1_000) == ["a"]  # > 5%
    assert too_common(lexemes, freqs, rows=1_000_000) == ["a", "c"]  # > 5,000 rows
    assert too_common(lexemes, freqs, rows=0) == []


async def test_each_ranking_is_a_statement_prepared_on_the_pool_s_connection(
    db: AsyncEngine, database_url: str
) -> None:
    async with ReadPool(database_url, 1, timeout_s=2, name="search") as single:
        # More searches than Postgres plans custom before it may switch a prepared
        # statement to a generic plan: the filter's values must still be honoured.
        for attempt in range(8):
            value = attempt % 2 + 3
            condition, params = compile_filter({"type": "eq", "key": "n", "value": value})
            hits = await search_vectors(
                single, ["vs_1"], "chunk zebra", [0.5] * DIMS, condition=condition, params=params
            )
            assert len(hits) == 10 and all(h.attributes == {"n": value} for h in hits)
        async with single.connection() as conn:
            prepared = await conn.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql"
            )
            # psycopg prepared the two rankings' statements on the pool's only connection
            # (they took turns), which starts with the HNSW settings and in autocommit.
            assert (await prepared.fetchone()) == (2,)
            ef_search = await (await conn.execute("SHOW hnsw.ef_search")).fetchone()
            assert ef_search == (str(HNSW_EF_SEARCH),) and conn.autocommit


async def test_a_search_survives_its_pooled_connections_being_killed(
    db: AsyncEngine, database_url: str
) -> None:
    async with ReadPool(database_url, 2, timeout_s=2, name="search") as searches:
        async with searches.connection() as one, searches.connection() as two:
            pids = [conn.info.backend_pid for conn in (one, two)]
        assert await search_vectors(searches, ["vs_1"], "zebra", [0.5] * DIMS)
        # As a Postgres restart does: every idle connection of the pool dies.
        async with db.connect() as other:
            for pid in pids:
                await other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        # No ping on checkout: the first statement finds its connection dead, the pool
        # checks the rest, and the search runs again on a new one.
        assert await search_vectors(searches, ["vs_1"], "zebra", [0.5] * DIMS)
        async with searches.connection() as conn:
            assert conn.info.backend_pid not in pids


def test_statements_are_bound_by_name_for_the_driver() -> None:
    assert driver_sql("SELECT x::int, :a, :a, '%' WHERE y = ANY(:b)") == (
        "SELECT x::int, %(a)s, %(a)s, '%%' WHERE y = ANY(%(b)s)"
    )


async def test_the_hnsw_settings_are_those_the_recall_benchmark_chose(db: AsyncEngine) -> None:
    async with db.connect() as conn:
        options = await conn.execute(
            text("SELECT reloptions FROM pg_class WHERE relname = :n"), {"n": index_name(DIMS)}
        )
        assert set(options.scalar_one()) == {
            f"m={HNSW_M}",
            f"ef_construction={HNSW_EF_CONSTRUCTION}",
        }
        # Set when the connection opened, so that no search spends a round trip on it.
        shown = await conn.execute(text("SHOW hnsw.ef_search"))
        assert shown.scalar_one() == str(HNSW_EF_SEARCH)
        scan = await conn.execute(text("SHOW hnsw.iterative_scan"))
        assert scan.scalar_one() == "relaxed_order"
