"""Merging the text index's pending list, in batches of files rather than after each one.

`ix_chunks_tsv` is a GIN index with `fastupdate`: inserts append to a pending list, which
every text search scans in full until it is merged into the index. Merging after each
file kept that list short but cost more than the rest of the insert (the same words are
merged again for every file: ~2 ms of Postgres CPU per 800-token chunk, against ~1.7 ms
for the insert with all its indexes; `python -m benchmarks.rag_index_cost`). One merge
per MERGE_INTERVAL_S while files complete, and one as soon as the worker runs out of
work, keep the list to a few seconds of ingestion (Postgres also merges it by itself
past `gin_pending_list_limit`, 4 MB by default).
"""

from __future__ import annotations

import math

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MERGE_INTERVAL_S = 2.0
_MERGE = text("SELECT gin_clean_pending_list('ix_chunks_tsv'::regclass)")


class PendingMerge:
    """One per worker: `completed` after each file, `maybe` when a merge could be due."""

    def __init__(self, interval_s: float = MERGE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.dirty = False
        self._merged_at = -math.inf

    def completed(self) -> None:
        self.dirty = True

    async def maybe(self, db: AsyncEngine, now: float, idle: bool) -> bool:
        """Merge if files completed since the last merge and it is time (or the worker is
        idle); whether it merged."""
        if not self.dirty or (not idle and now - self._merged_at < self.interval_s):
            return False
        # Claimed before the await: a second job finishing meanwhile does not merge too.
        self.dirty, self._merged_at = False, now
        try:
            async with db.begin() as conn:
                await conn.execute(_MERGE)
        except BaseException:
            self.dirty = True  # the next chance merges
            raise
        return True
