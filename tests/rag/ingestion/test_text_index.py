"""The text index's pending list: merged at most once per interval while files complete,
and as soon as the worker is idle."""

from __future__ import annotations

from sqlalchemy import text

from gateway.db.engine import create_engine
from gateway.rag.ingestion.text_index import PendingMerge
from tests.rag.ingestion.test_ingestion_batches import pending_pages


async def test_merges_are_spaced_out_while_busy_and_done_when_idle(database_url: str) -> None:
    db = create_engine(database_url, pool_size=1)
    merge = PendingMerge(interval_s=10.0)
    try:
        assert not await merge.maybe(db, now=0.0, idle=True)  # nothing completed yet
        merge.completed()
        assert await merge.maybe(db, now=0.0, idle=False)
        merge.completed()
        assert not await merge.maybe(db, now=5.0, idle=False)  # within the interval
        assert merge.dirty
        assert await merge.maybe(db, now=5.0, idle=True)
        merge.completed()
        assert await merge.maybe(db, now=15.0, idle=False)
        assert not merge.dirty
    finally:
        await db.dispose()


async def test_a_failed_merge_is_tried_again(database_url: str) -> None:
    db = create_engine(database_url, pool_size=1)
    merge = PendingMerge()
    merge.completed()
    try:
        async with db.begin() as conn:
            await conn.execute(text("ALTER INDEX ix_chunks_tsv RENAME TO ix_elsewhere"))
        try:
            await merge.maybe(db, now=0.0, idle=True)
        except Exception:  # noqa: S110 (the index is missing: the merge fails)
            pass
        else:
            raise AssertionError("the merge should have failed")
        assert merge.dirty
        async with db.begin() as conn:
            await conn.execute(text("ALTER INDEX ix_elsewhere RENAME TO ix_chunks_tsv"))
        assert await merge.maybe(db, now=0.0, idle=True)
        assert pending_pages(database_url) == 0
    finally:
        await db.dispose()
