"""The per-process key cache. Pure: every method takes `now` (monotonic seconds).

Entries are keyed by the sha256 of the secret. A positive entry holds the KeyRecord (a
revoked or expired key is cached too, so refusing it costs no query); a negative entry
remembers that a hash is unknown, briefly, so a flood of wrong keys reaches the database
once per hash and negative TTL rather than once per request.

    age < ttl                       fresh: use it
    ttl <= age < ttl + grace        stale: ask the database; use it only if that fails
    age >= ttl + grace, or absent   missing: ask the database; 503 if that fails

Invalidation (LISTEN/NOTIFY, or a reconnect that may have missed some) bumps
`generation`; a database answer read before the bump is not stored, so a lookup racing a
revocation cannot put the pre-revocation row back into the cache.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.keys.record import KeyRecord


class Freshness(enum.Enum):
    FRESH = "fresh"
    STALE = "stale"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Lookup:
    freshness: Freshness
    # None with FRESH means "known to be unknown" (a negative entry).
    record: KeyRecord | None = None


_MISSING = Lookup(Freshness.MISSING)
_NEGATIVE = Lookup(Freshness.FRESH)


class KeyCache:
    def __init__(
        self,
        ttl_s: float,
        grace_s: float,
        negative_ttl_s: float,
        *,
        max_positive: int = 100_000,
        max_negative: int = 10_000,
    ) -> None:
        self.ttl_s = ttl_s
        self.grace_s = grace_s
        self.negative_ttl_s = negative_ttl_s
        self.max_positive = max_positive
        self.max_negative = max_negative
        self.generation = 0
        self._positive: dict[bytes, tuple[KeyRecord, float]] = {}
        self._negative: dict[bytes, float] = {}
        self._by_id: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._positive) + len(self._negative)

    def get(self, digest: bytes, now: float) -> Lookup:
        entry = self._positive.get(digest)
        if entry is not None:
            record, stored = entry
            age = now - stored
            if age < self.ttl_s:
                return Lookup(Freshness.FRESH, record)
            if age < self.ttl_s + self.grace_s:
                return Lookup(Freshness.STALE, record)
            self._drop(digest)
            return _MISSING
        stored_neg = self._negative.get(digest)
        if stored_neg is not None:
            if now - stored_neg < self.negative_ttl_s:
                return _NEGATIVE
            del self._negative[digest]
        return _MISSING

    def put(self, digest: bytes, record: KeyRecord | None, now: float, generation: int) -> bool:
        """Store a database answer read at `generation`; False if it is already outdated."""
        if generation != self.generation:
            return False
        if record is None:
            self._negative.pop(digest, None)
            # Oldest first: a flood of random keys evicts its own entries, nothing else.
            while len(self._negative) >= self.max_negative:
                del self._negative[next(iter(self._negative))]
            self._negative[digest] = now
            return True
        self._negative.pop(digest, None)
        self._drop(digest)
        while len(self._positive) >= self.max_positive:
            self._drop(next(iter(self._positive)))
        self._positive[digest] = (record, now)
        self._by_id[record.id] = digest
        return True

    def invalidate(self, key_id: str) -> None:
        self.generation += 1
        digest = self._by_id.get(key_id)
        if digest is not None:
            self._drop(digest)

    def clear(self) -> None:
        self.generation += 1
        self._positive.clear()
        self._negative.clear()
        self._by_id.clear()

    def _drop(self, digest: bytes) -> None:
        entry = self._positive.pop(digest, None)
        if entry is not None and self._by_id.get(entry[0].id) == digest:
            del self._by_id[entry[0].id]
