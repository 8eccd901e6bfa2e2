"""Files' bytes in Postgres (`files` + `file_parts`, ~1 MiB a part), written and read a part
at a time, so that neither an upload, a download nor an ingestion holds a file whole."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.rag.access import Caller
from gateway.rag.ingestion.spool import Spool
from gateway.rag.ingestion.uploads import Received

_PART = text("INSERT INTO file_parts (file_id, part, data) VALUES (:id, :part, :data)")


async def store_upload(
    conn: AsyncConnection, caller: Caller, file_id: str, received: Received, spool: Spool
) -> Mapping[Any, Any]:
    """Insert a spooled upload as `file_id` within `conn`'s transaction; the new `files` row."""
    row = (
        (
            await conn.execute(
                text(
                    "INSERT INTO files (id, owner, filename, purpose, bytes, sha256) "
                    "VALUES (:id, :owner, :filename, :purpose, :bytes, :sha) RETURNING *"
                ),
                {
                    "id": file_id,
                    "owner": caller.owner,
                    "filename": received.filename,
                    "purpose": received.purpose,
                    "bytes": received.size,
                    "sha": received.sha256,
                },
            )
        )
        .mappings()
        .one()
    )
    part = 0
    async for block in spool.blocks():
        await conn.execute(_PART, {"id": file_id, "part": part, "data": block})
        part += 1
    if part == 0:  # an empty file still has its (empty) part: readers expect part 0
        await conn.execute(_PART, {"id": file_id, "part": 0, "data": b""})
    return row


async def read_parts(db: AsyncEngine, file_id: str) -> AsyncIterator[bytes]:
    """A file's bytes, one part per query on a connection held only for that query."""
    part = 0
    while True:
        async with db.connect() as conn:
            data = (
                await conn.execute(
                    text("SELECT data FROM file_parts WHERE file_id = :id AND part = :part"),
                    {"id": file_id, "part": part},
                )
            ).scalar()
        if data is None:
            return
        yield bytes(data)
        part += 1


async def spool_stored(db: AsyncEngine, file_id: str, spool: Spool) -> int:
    """Copy a stored file into `spool`; its size."""
    async for data in read_parts(db, file_id):
        await spool.write(data)
    return spool.size
