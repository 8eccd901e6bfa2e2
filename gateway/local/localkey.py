"""The API key `gateway up` prints: made once through the key store, kept in the data dir.

`gateway up` hands out an ordinary key, not the admin key: it is what an application or
Open WebUI should hold (metered, listed by `gateway keys list`, revocable), while the admin
key opens /admin/* and bypasses limits. Its secret is kept (0600) so every run prints the
same key; if the key was revoked, expired or its database was reset, a new one is made.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from gateway.db.engine import create_engine, session_factory
from gateway.db.migrate import upgrade
from gateway.keys.schema import KeyCreate
from gateway.keys.store import KeyStore
from gateway.keys.tokens import hash_secret, looks_like_key
from gateway.local.datadir import DataDir, read_secret, write_secret

KEY_NAME = "local"


def migrate(database_url: str) -> None:
    upgrade(database_url)


def ensure_local_key(database_url: str, data: DataDir) -> tuple[str, bool]:
    """The local key's secret, and whether it was created by this call."""
    return asyncio.run(_ensure(database_url, data))


async def _ensure(database_url: str, data: DataDir) -> tuple[str, bool]:
    engine = create_engine(database_url, pool_size=1)
    try:
        store = KeyStore(session_factory(engine))
        kept = read_secret(data.api_key_file)
        if kept is not None and looks_like_key(kept) and await _usable(store, kept):
            return kept, False
        spec = KeyCreate.model_validate(
            {"name": KEY_NAME, "metadata": {"created_by": "gateway up"}}
        )
        _row, secret = await store.create(spec, lambda model: model)
    finally:
        await engine.dispose()
    write_secret(data.api_key_file, secret)
    return secret, True


async def _usable(store: KeyStore, secret: str) -> bool:
    record = await store.find_by_hash(hash_secret(secret))
    if record is None or record.revoked_at is not None:
        return False
    return record.expires_at is None or record.expires_at > datetime.now(UTC)
