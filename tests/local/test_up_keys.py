"""The key `gateway up` prints: made once in the real (embedded) Postgres, the same every run,
replaced when it no longer works."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from gateway.db.engine import create_engine
from gateway.keys.store import KeyStore
from gateway.keys.tokens import hash_secret, looks_like_key
from gateway.local.datadir import DataDir, write_secret
from gateway.local.localkey import KEY_NAME, ensure_local_key

T = TypeVar("T")


def store_call(database_url: str, action: Callable[[KeyStore], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(database_url, pool_size=1)
        try:
            return await action(KeyStore(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_created_once_then_reused(database_url: str, tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    secret, created = ensure_local_key(database_url, data)
    assert created and looks_like_key(secret)
    assert data.api_key_file.read_text().strip() == secret
    assert stat.S_IMODE(data.api_key_file.stat().st_mode) == 0o600

    again, created_again = ensure_local_key(database_url, data)
    assert (again, created_again) == (secret, False)
    rows = store_call(database_url, lambda store: store.list_keys())
    assert [(row.name, row.metadata_["created_by"]) for row in rows] == [(KEY_NAME, "gateway up")]
    assert rows[0].models is None and rows[0].rpm is None  # every model, no limits


def test_a_revoked_key_is_replaced(database_url: str, tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    secret, _ = ensure_local_key(database_url, data)
    record = store_call(database_url, lambda store: store.find_by_hash(hash_secret(secret)))
    assert record is not None
    key_id = record.id
    store_call(database_url, lambda store: store.revoke(key_id))
    fresh, created = ensure_local_key(database_url, data)
    assert created and fresh != secret
    assert data.api_key_file.read_text().strip() == fresh


def test_a_key_from_another_database_is_replaced(database_url: str, tmp_path: Path) -> None:
    # The database was reset (or the file copied from another box): the kept secret is unknown.
    data = DataDir(tmp_path)
    write_secret(data.api_key_file, "sk-gw-" + "x" * 43)
    fresh, created = ensure_local_key(database_url, data)
    assert created and fresh != "sk-gw-" + "x" * 43
