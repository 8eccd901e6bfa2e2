"""Anonymous temporary files on local disk for uploads and ingestion (GATEWAY_SPOOL_DIR).

A spool file has no name (it is unlinked as it is created), so it disappears with its
descriptor whatever happens to the process: nothing is ever left behind on disk. Reads
and writes run in a thread, ~1 MiB at a time, so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import errno
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import IO

from gateway.errors import SpoolUnavailable

BLOCK_BYTES = 1 << 20


def _unavailable(exc: OSError, where: str | None) -> SpoolUnavailable:
    place = where or tempfile.gettempdir()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SpoolUnavailable(
            f"The gateway's spool directory ({place}, GATEWAY_SPOOL_DIR) is full; retry later."
        )
    return SpoolUnavailable(
        f"The gateway cannot write to its spool directory ({place}, GATEWAY_SPOOL_DIR): "
        f"{exc.strerror or type(exc).__name__}."
    )


class Spool:
    """One spool file; `write` appends, `blocks` reads it back from the start."""

    def __init__(self, file: IO[bytes], where: str | None) -> None:
        self.file = file
        self.where = where
        self.size = 0

    async def write(self, data: bytes) -> None:
        try:
            await asyncio.to_thread(self.file.write, data)
        except OSError as exc:
            raise _unavailable(exc, self.where) from exc
        self.size += len(data)

    async def flush(self) -> None:
        """Make what was written visible through the descriptor (a child reads it there)."""
        try:
            await asyncio.to_thread(self.file.flush)
        except OSError as exc:
            raise _unavailable(exc, self.where) from exc

    async def blocks(self, size: int = BLOCK_BYTES) -> AsyncIterator[bytes]:
        await self.flush()
        await asyncio.to_thread(self.file.seek, 0)
        while True:
            block = await asyncio.to_thread(self.file.read, size)
            if not block:
                return
            yield block

    def fileno(self) -> int:
        """For a child process to inherit (gateway.rag.ingestion.sandbox)."""
        return self.file.fileno()


@contextmanager
def spool_file(where: str | None, prefix: str) -> Iterator[Spool]:
    try:
        file = tempfile.TemporaryFile(dir=where, prefix=prefix)  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise _unavailable(exc, where) from exc
    try:
        yield Spool(file, where)
    finally:
        file.close()
