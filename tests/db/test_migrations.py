from __future__ import annotations

import uuid
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text

from gateway.db.engine import create_engine
from gateway.db.migrate import alembic_config, current, upgrade
from gateway.db.url import libpq_url, sqlalchemy_url

HEAD = "0007"


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


_EVENT_ROWS = [
    # (key_id, model, status, prompt, completion, ttft_ms, created_at, end_user)
    ("k1", "m1", 200, 10, 5, 3.5, "2025-12-31 23:59:59.5+00", None),
    ("k1", "m1", 429, 1, 0, None, "2026-01-01 00:00:00+00", "ann"),
    (None, "m2", 200, 7, 3, 8.0, "2026-11-02 10:30:00+00", None),
    ("k2", "m1", 502, 100, 50, 12.25, "2026-11-02 10:45:00+00", "bob"),
]


def _fresh_database(pg_server: Any) -> str:
    from sqlalchemy.engine import make_url

    name = f"gw_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE DATABASE {name};")
    return make_url(pg_server.get_uri()).set(database=name).render_as_string(hide_password=False)


def test_0006_converts_an_existing_usage_table_with_its_rows(pg_server: Any) -> None:
    url = _fresh_database(pg_server)
    upgrade(url, "0005")
    engine = create_sync_engine(sqlalchemy_url(url))
    columns = (
        "key_id, model, status, prompt_tokens, completion_tokens, ttft_ms, created_at, end_user"
    )
    select = f"SELECT id, request_id, {columns} FROM usage_events ORDER BY id"  # noqa: S608
    insert = (
        "INSERT INTO usage_events (request_id, route, duration_ms, streamed, "  # noqa: S608
        f"cancelled, {columns}) VALUES (:rid, '/v1/chat/completions', 1.5, "
        "false, false, :k, :m, :s, :p, :c, :t, :at, :eu)"
    )
    try:
        with engine.begin() as conn:
            for i, row in enumerate(_EVENT_ROWS):
                conn.execute(
                    text(insert),
                    dict(zip(("k", "m", "s", "p", "c", "t", "at", "eu"), row, strict=True))
                    | {"rid": f"r{i}"},
                )
            before = conn.execute(text(select)).all()

        upgrade(url)
        assert current(url) == HEAD
        with engine.begin() as conn:
            assert conn.execute(text(select)).all() == before
            parts = set(
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'usage_events'::regclass"
                    )
                ).scalars()
            )
            assert {"usage_events_p2025_12", "usage_events_p2026_01", "usage_events_p2026_11",
                    "usage_events_default"} <= parts  # fmt: skip
            assert conn.execute(text("SELECT count(*) FROM usage_events_default")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM usage_events_p2026_11")).scalar() == 2
            # The ids go on from the old table's sequence.
            new_id = conn.execute(
                text(
                    "INSERT INTO usage_events (request_id, model, route, status, prompt_tokens, "
                    "completion_tokens, duration_ms, streamed, cancelled, created_at) VALUES "
                    "('r9', 'm1', '/v1/x', 200, 0, 0, 1, false, false, now()) RETURNING id"
                )
            ).scalar()
            assert new_id == before[-1].id + 1
            days = conn.execute(
                text(
                    "SELECT start, key_id, requests, prompt_tokens + completion_tokens, errors, "
                    "rate_limited, ttft_count FROM usage_rollup WHERE period = 'day' "
                    "ORDER BY start, key_id NULLS FIRST"
                )
            ).all()
        assert [tuple(d)[1:] for d in days] == [
            ("k1", 1, 15, 0, 0, 1),
            ("k1", 1, 1, 1, 1, 0),
            (None, 1, 10, 0, 0, 1),
            ("k2", 1, 150, 1, 0, 1),
        ]

        upgrade_down(url, "0005")
        with engine.begin() as conn:
            after = conn.execute(text(select)).all()
            assert after[: len(before)] == before and len(after) == len(before) + 1
    finally:
        engine.dispose()


def upgrade_down(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
