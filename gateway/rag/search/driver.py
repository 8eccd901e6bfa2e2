"""Search statements on the driver's own connection: a pooled connection's psycopg
connection, in autocommit, with the statement prepared on it.

Search runs one statement per request and is the hot path users wait on; what SQLAlchemy
adds per statement (compiling `text()`, processing each row) and the BEGIN/ROLLBACK a
transaction would cost are paid here once per statement text instead (`driver_sql` is
cached). psycopg prepares a statement on its connection (`prepare=True`), so Postgres
parses and plans it once per connection, not once per search; the filter's SQL varies
with its shape only, never with its values, which travel as parameters.

The pool is still SQLAlchemy's (gateway.rag.resources): its limits, timeout, pre-ping and
invalidation apply. A connection whose socket fails here is invalidated, so the pool
does not hand it out again.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

import psycopg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.psycopg import PGDialectAsync_psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

_DIALECT = PGDialectAsync_psycopg()  # type: ignore[no-untyped-call]  # SQLAlchemy's own
# Distinct statement texts are few: one per embedding dimension, filter shape and whether
# the query has words.
_CACHED = 512


@lru_cache(maxsize=_CACHED)
def driver_sql(sql: str) -> str:
    """`sql` with `:name` parameters (as `text()` reads them) in psycopg's `%(name)s`."""
    return str(text(sql).compile(dialect=_DIALECT))


async def fetch_all(db: AsyncEngine, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of one read-only statement, prepared on a connection of `db`'s pool."""
    statement = driver_sql(sql)
    async with db.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        raw = await conn.get_raw_connection()
        driver = cast(psycopg.AsyncConnection[tuple[Any, ...]], raw.driver_connection)
        try:
            cursor = await driver.execute(statement, params, prepare=True)
            return await cursor.fetchall()
        except (psycopg.OperationalError, psycopg.InterfaceError):
            await conn.invalidate()
            raise
