"""How many uploads may be in progress at once: per key, in all, and writing to Postgres.

An upload in progress holds a spool file on local disk (up to GATEWAY_MAX_UPLOAD_BYTES)
for as long as its client keeps sending, so the number of them bounds the disk the
gateway may fill and the work one key may start. Counted per process: each replica
allows this many.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gateway.errors import TooManyUploads
from gateway.limits.headers import retry_after_headers

# An upload takes seconds to minutes; retrying sooner than this would mostly be refused.
RETRY_AFTER_S = 10.0


class UploadSlots:
    def __init__(
        self,
        per_key: int,
        total: int,
        writers: int,
        refused: Callable[[], None] = lambda: None,
    ) -> None:
        self.per_key = per_key
        self.total = total
        self._refused = refused
        self._by_key: dict[str, int] = {}
        self._count = 0
        # Writing a spooled upload into Postgres takes a retrieval connection for a few
        # seconds: at most half the pool, so search and the other routes keep the rest.
        self.writing = asyncio.Semaphore(max(1, writers))

    @property
    def in_progress(self) -> int:
        return self._count

    @contextmanager
    def hold(self, key_id: str) -> Iterator[None]:
        """One upload for `key_id` while the block runs, or TooManyUploads at once."""
        if self._by_key.get(key_id, 0) >= self.per_key:
            self._refused()
            raise TooManyUploads(
                f"This API key already has {self.per_key} uploads in progress, the most "
                "allowed at once (GATEWAY_MAX_UPLOADS_PER_KEY); retry when one has finished.",
                headers=retry_after_headers(RETRY_AFTER_S),
            )
        if self._count >= self.total:
            self._refused()
            raise TooManyUploads(
                f"The gateway is receiving {self.total} uploads already, the most it takes at "
                "once (GATEWAY_MAX_UPLOADS); retry shortly.",
                headers=retry_after_headers(RETRY_AFTER_S),
            )
        self._by_key[key_id] = self._by_key.get(key_id, 0) + 1
        self._count += 1
        try:
            yield
        finally:
            self._count -= 1
            left = self._by_key[key_id] - 1
            if left:
                self._by_key[key_id] = left
            else:
                del self._by_key[key_id]  # the map holds only keys uploading now
