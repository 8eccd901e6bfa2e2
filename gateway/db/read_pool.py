"""A pool for hot read-only statements (search's): psycopg_pool, connections in
autocommit, each statement prepared on the connection that runs it.

Search is the hot path users wait on. Through SQLAlchemy's pool a search paid ~1.2 ms for
the pre-ping's round trip and ~1 ms for the checkout and the isolation-level dance, as
much as its statement at 100k chunks (benchmarks/README.md, "Vector-store search");
psycopg_pool hands out a connection in microseconds. psycopg prepares a statement on its
connection (`prepare=True`), so Postgres parses and plans it once per connection; SQL
should vary with the shape of what is asked, never with values, which travel as
parameters.

No ping on checkout: a connection that died while idle (Postgres restarted, its backend
terminated) fails its statement, the pool checks its other idle connections, and the
statement runs once more. While Postgres is down a statement waits for a connection at
most `timeout_s`, then fails with PoolTimeout, an OperationalError: a 503
(gateway.db.outage).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.psycopg import PGDialectAsync_psycopg

from gateway.db.engine import with_session_options
from gateway.db.url import libpq_url

_DIALECT = PGDialectAsync_psycopg()  # type: ignore[no-untyped-call]  # SQLAlchemy's own
# Distinct statement texts are few (search: one per ranking, embedding dimension and
# filter shape).
_CACHED = 512


@lru_cache(maxsize=_CACHED)
def driver_sql(sql: str) -> str:
    """`sql` with `:name` parameters (as `text()` reads them) in psycopg's `%(name)s`."""
    return str(text(sql).compile(dialect=_DIALECT))


class ReadPool:
    """At most `size` connections, one kept open while idle; `open()` before use (or
    `async with`). `name` is the pool's in psycopg_pool's log lines."""

    def __init__(self, database_url: str, size: int, *, timeout_s: float, name: str) -> None:
        url, options = with_session_options(database_url)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]] = (
            AsyncConnectionPool(
                libpq_url(url),
                kwargs={"autocommit": True, "options": options},
                min_size=1,
                max_size=size,
                timeout=timeout_s,
                name=name,
                open=False,
            )
        )

    async def open(self) -> None:
        """Start connecting in the background: an unreachable database does not stop the
        gateway from starting (statements fail until it is back: a 503)."""
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> ReadPool:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[tuple[Any, ...]]]:
        """A connection of the pool, given back on leaving the block."""
        return self._pool.connection()

    async def fetch_all(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one read-only statement (`:name` parameters)."""
        statement = driver_sql(sql)
        async with self.connection() as conn:
            try:
                return await _rows(conn, statement, params)
            except psycopg.OperationalError:
                if not conn.broken:
                    raise
        # The connection had died idle (the pool drops it on return): others may have too.
        await self._pool.check()
        async with self.connection() as conn:
            return await _rows(conn, statement, params)


async def _rows(
    conn: psycopg.AsyncConnection[tuple[Any, ...]], statement: str, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(statement, params, prepare=True)
    return await cursor.fetchall()
