from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from gateway.db.engine import create_engine
from gateway.db.migrate import current, upgrade
from gateway.db.url import libpq_url, sqlalchemy_url

HEAD = "0006"


def test_urls_users_write_are_accepted() -> None:
    for url in ("postgresql://u:p@h/db", "postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"):
        assert sqlalchemy_url(url).drivername == "postgresql+psycopg"
    socket = sqlalchemy_url("postgresql://postgres:@/postgres?host=/tmp/sock")
    assert socket.query["host"] == "/tmp/sock"
    assert libpq_url("postgresql+psycopg://u:p@h/db") == "postgresql://u:p@h/db"


def test_other_databases_are_refused_with_the_variable_named() -> None:
    with pytest.raises(ValueError, match="GATEWAY_DATABASE_URL"):
        sqlalchemy_url("mysql://u@h/db")


def test_migrations_apply_and_are_idempotent(database_url: str) -> None:
    assert current(database_url) == HEAD
    upgrade(database_url)  # a second run is a no-op
    assert current(database_url) == HEAD


async def test_async_engine_talks_to_the_socket_url(database_url: str, pg_server: Any) -> None:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        tables = (
            (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            )
            .scalars()
            .all()
        )
    await engine.dispose()
    assert {"api_keys", "usage_events", "usage_counters", "alembic_version"} <= set(tables)
