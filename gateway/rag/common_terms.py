"""Lexemes too common to narrow a full-text search, read from Postgres's own statistics.

A word found in a large share of all chunks tells them apart no better than a stop word,
and it is what makes the text ranking slow: the GIN index decodes its whole posting list
(tens of thousands of entries) for every query that names it. Like Lucene's
CommonTermsQuery, the text ranking leaves such words out and matches on the rarer ones;
the vector ranking still sees the whole question.

The frequencies are those ANALYZE keeps for the `tsv` column (`most_common_elems`; the
top 1,000 lexemes at the default statistics target), so knowing them costs nothing at
ingestion, and they are re-read every few minutes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Common: in more than 5% of the chunks, or more than 5,000 of them (the posting lists a
# query may decode stay short however large the corpus grows).
COMMON_FRACTION = 0.05
COMMON_ROWS = 5_000
REFRESH_S = 300.0

_STATS = text(
    "SELECT s.most_common_elems::text::text[] AS lexemes, s.most_common_elem_freqs AS freqs, "
    "c.reltuples AS rows FROM pg_stats s JOIN pg_class c ON c.oid = 'chunks'::regclass "
    "WHERE s.schemaname = current_schema() AND s.tablename = 'chunks' AND s.attname = 'tsv'"
)


def too_common(lexemes: Sequence[str], freqs: Sequence[float], rows: float) -> list[str]:
    """The lexemes whose frequency (share of rows containing them) marks them as common.
    `freqs` may be longer than `lexemes` (Postgres appends its min, max and null share)."""
    if rows <= 0:
        return []
    cutoff = min(COMMON_FRACTION, COMMON_ROWS / rows)
    return [lexeme for lexeme, freq in zip(lexemes, freqs, strict=False) if freq > cutoff]


class CommonTerms:
    """The current common lexemes of one database, re-read at most every `refresh_s`."""

    def __init__(self, refresh_s: float = REFRESH_S) -> None:
        self._refresh_s = refresh_s
        self._terms: list[str] = []
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, db: AsyncEngine) -> list[str]:
        if time.monotonic() - self._read_at < self._refresh_s:
            return self._terms
        async with self._lock:  # one reader; the others wait for its answer
            if time.monotonic() - self._read_at >= self._refresh_s:
                async with db.connect() as conn:
                    row = (await conn.execute(_STATS)).first()
                # Before the first ANALYZE there are no statistics: nothing is common yet.
                fresh = [] if row is None or row.lexemes is None else too_common(*row)
                self._terms = fresh
                self._read_at = time.monotonic()
        return self._terms
