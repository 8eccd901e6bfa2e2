"""Chunk rows into Postgres with COPY, vectors in pgvector's binary `halfvec` format.

One COPY per batch instead of an INSERT per row: the rows stream in one round trip, and
neither side formats or parses a vector as text (384 floats printed by Python and read
back by Postgres cost more than the row's other work). The vectors are rounded to
half precision here, as Postgres would round them on the way into the `halfvec` column.

Runs on the caller's SQLAlchemy connection, within its transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pgvector import HalfVector
from pgvector.psycopg.halfvec import register_halfvec_info
from psycopg import AsyncConnection as PsycopgConnection
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb
from sqlalchemy.ext.asyncio import AsyncConnection

# Column lists and their types, as psycopg encodes them for a binary COPY.
STAGING = (
    "COPY chunk_staging (vector_store_id, file_id, run, idx, text, dims, embedding) "
    "FROM STDIN (FORMAT BINARY)",
    ["text", "text", "text", "int4", "text", "int4", "halfvec"],
)
CHUNKS = (
    "COPY chunks (vector_store_id, file_id, idx, text, attributes, dims, embedding) "
    "FROM STDIN (FORMAT BINARY)",
    ["text", "text", "int4", "text", "jsonb", "int4", "halfvec"],
)


def halfvec(vector: Sequence[float]) -> HalfVector:
    return HalfVector(list(vector))


async def _driver(conn: AsyncConnection) -> PsycopgConnection[Any]:
    """psycopg's connection under `conn`, able to send `halfvec` in binary."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, PsycopgConnection)
    if driver.adapters.types.get("halfvec") is None:
        # Once per pooled connection: the type's oid belongs to the database.
        info = await TypeInfo.fetch(driver, "halfvec")
        if info is None:
            raise RuntimeError("pgvector's halfvec type is missing: run `gateway migrate`")
        register_halfvec_info(driver, info)
    return driver


async def copy_rows(
    conn: AsyncConnection, target: tuple[str, list[str]], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY `rows` (in `target`'s column order) within `conn`'s transaction."""
    statement, types = target
    driver = await _driver(conn)
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            await copy.write_row(row)


def attributes(value: Any) -> Jsonb:
    return Jsonb(value or {})
