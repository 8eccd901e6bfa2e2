"""Who is calling /v1/*: the presented key, checked against a cache backed by Postgres.

Cache policy (see gateway.keys.cache): positive entries live `key_cache_ttl_s`, unknown
hashes a few seconds; LISTEN/NOTIFY drops changed keys on every replica at once, and a
(re)connected listener drops everything. While the database is unreachable, cached keys
keep working up to `db_outage_grace_s` past their TTL and unknown keys get 503, not 401:
refusing a valid key as invalid would make clients throw it away.

No message or log line here contains the presented key, not even masked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import Settings
from gateway.db.url import libpq_url
from gateway.errors import AuthenticationError, DatabaseUnavailable
from gateway.http.asgi import Scope
from gateway.keys.admin import is_admin_key
from gateway.keys.cache import Freshness, KeyCache
from gateway.keys.credentials import presented_key
from gateway.keys.listener import Listener
from gateway.keys.record import KeyRecord
from gateway.keys.store import ALL, CHANNEL, KeyStore, Sessions
from gateway.keys.tokens import hash_secret, looks_like_key
from gateway.metrics import Metrics

log = logging.getLogger("gateway.keys")

# The admin key also works on /v1/*, unlimited and seeing everything.
ADMIN = KeyRecord(id="admin", name="admin")

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
INCORRECT_KEY = "Incorrect API key provided. Ask the gateway's operator for a valid key."
REVOKED_KEY = "This API key has been revoked."
EXPIRED_KEY = "This API key has expired."
DB_DOWN = "The gateway cannot check API keys right now (its database is unreachable)."

# After a failed query, misses fail fast for this long instead of each waiting on a dead
# database; stale entries are served meanwhile.
_DB_RETRY_S = 1.0


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        db: Sessions | AsyncEngine,
        metrics: Metrics | None = None,
        *,
        negative_ttl_s: float = 5.0,
        lookup_timeout_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
        self.store = KeyStore(db)
        self.cache = KeyCache(settings.key_cache_ttl_s, settings.db_outage_grace_s, negative_ttl_s)
        self._lookup_timeout_s = lookup_timeout_s
        self._clock = clock
        self._wall = wall
        self._db_down_until = float("-inf")
        self._inflight: dict[bytes, asyncio.Future[KeyRecord | None]] = {}
        self.listener = (
            Listener(libpq_url(settings.database_url), CHANNEL, self._on_notify, self.cache.clear)
            if settings.database_url
            else None
        )
        self._count: Callable[[str], None] = _counter(metrics)

    async def start(self) -> None:
        if self.listener is not None:
            await self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()

    def invalidate(self, key_id: str) -> None:
        """Drop one key here and now (the NOTIFY does it on every replica, this one too)."""
        self.cache.invalidate(key_id)

    async def authenticate(self, scope: Scope) -> KeyRecord:
        return await self.check(presented_key(scope))

    async def check(self, presented: str | None) -> KeyRecord:
        if presented is None:
            raise AuthenticationError(MISSING_KEY)
        if is_admin_key(self._admin_key, presented):
            return ADMIN
        if not looks_like_key(presented):
            self._count("malformed")
            raise AuthenticationError(INCORRECT_KEY)
        record = await self._lookup(hash_secret(presented))
        if record is None:
            raise AuthenticationError(INCORRECT_KEY)
        if record.revoked_at is None and record.expires_at is None:
            return record  # most keys: no clock to read
        now = self._wall()
        if record.revoked_at is not None and record.revoked_at <= now:
            raise AuthenticationError(REVOKED_KEY)
        if record.expires_at is not None and record.expires_at <= now:
            raise AuthenticationError(EXPIRED_KEY)
        return record

    async def _lookup(self, digest: bytes) -> KeyRecord | None:
        now = self._clock()
        cached = self.cache.get(digest, now)
        if cached.freshness is Freshness.FRESH:
            self._count("hit" if cached.record is not None else "negative")
            return cached.record
        if now >= self._db_down_until:
            try:
                record = await self._fetch(digest)
            except DatabaseUnavailable:
                self._db_down_until = self._clock() + _DB_RETRY_S
            else:
                return record
        if cached.freshness is Freshness.STALE:
            self._count("stale")
            return cached.record
        self._count("unavailable")
        raise DatabaseUnavailable(DB_DOWN, headers={"retry-after": "1"})

    async def _fetch(self, digest: bytes) -> KeyRecord | None:
        # One query per hash however many requests wait on it; shielded, so a client that
        # leaves does not cancel the answer the others are waiting for.
        future = self._inflight.get(digest)
        if future is None:
            future = asyncio.ensure_future(self._query(digest))
            self._inflight[digest] = future
            future.add_done_callback(lambda f: self._query_done(digest, f))
        return await asyncio.shield(future)

    def _query_done(self, digest: bytes, future: asyncio.Future[KeyRecord | None]) -> None:
        self._inflight.pop(digest, None)
        if not future.cancelled():
            future.exception()  # retrieved here, so an unawaited failure logs no warning

    async def _query(self, digest: bytes) -> KeyRecord | None:
        generation = self.cache.generation
        self._count("db")
        try:
            async with asyncio.timeout(self._lookup_timeout_s):
                record = await self.store.find_by_hash(digest)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("key lookup failed: database unreachable (%s)", type(exc).__name__)
            raise DatabaseUnavailable(DB_DOWN, headers={"retry-after": "1"}) from exc
        # Outdated if a NOTIFY (or a reconnect) arrived meanwhile: then it is not cached.
        self.cache.put(digest, record, self._clock(), generation)
        return record

    def _on_notify(self, payload: str) -> None:
        if payload == ALL:
            self.cache.clear()
        else:
            self.cache.invalidate(payload)


_RESULTS = ("hit", "negative", "db", "stale", "unavailable", "malformed")


def _counter(metrics: Metrics | None) -> Callable[[str], None]:
    if metrics is None:
        return lambda result: None
    children = {r: metrics.key_lookups.labels(r) for r in _RESULTS}
    return lambda result: children[result].inc()
