"""One schema: the tables the migrations build are the ones `gateway/db/models.py` declares.

The ORM classes stay (they document every table in one place, `ApiKey` is used at run
time, and Alembic's autogenerate compares against them when a migration is written), so
this test holds the two together with Alembic's own comparison: a migration that adds a
column the models lack, or a model change no migration makes, fails here.

The one documented difference: the HNSW index of each embedding dimension is created at
run time, the first time chunks of that dimension arrive (gateway.rag.index), not by a
migration, since the dimension is the served model's. Such indexes are expected in a
database that has ingested, and nowhere in the models.

The monthly partitions of `usage_events` (gateway.usage.partitions) are made at run time
too; they are compared as part of their parent, not as tables of their own.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.dialects.postgresql.base import PGDialect

from gateway.db.engine import create_engine as create_async_engine
from gateway.db.models import Base, HalfVec
from gateway.db.url import sqlalchemy_url
from gateway.rag.index import ensure_index, index_name

RUN_TIME_INDEX = re.compile(r"^ix_chunks_hnsw_\d+$")


def differences(database_url: str) -> list[Any]:
    engine = create_engine(sqlalchemy_url(database_url))
    # Reflection learns pgvector's type, so an `embedding` column of another type would
    # show (the models' HalfVec is what the migrations create).
    dialect = engine.dialect
    assert isinstance(dialect, PGDialect)
    dialect.ischema_names = {**dialect.ischema_names, "halfvec": HalfVec}
    try:
        with engine.connect() as conn:
            partitions = set(
                conn.exec_driver_sql("SELECT relname FROM pg_class WHERE relispartition").scalars()
            )

            def not_a_partition(obj: Any, name: str | None, kind: str, *_: Any) -> bool:
                table = obj if kind == "table" else getattr(obj, "table", None)
                return getattr(table, "name", None) not in partitions

            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": not_a_partition}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _index_of(diff: Any) -> str | None:
    """The index name of an index difference (`("remove_index", Index)`), else None."""
    if isinstance(diff, tuple) and diff and diff[0] in ("add_index", "remove_index"):
        return str(diff[1].name)
    return None


def test_the_migrated_database_is_what_the_models_declare(database_url: str) -> None:
    assert differences(database_url) == []


def test_run_time_hnsw_indexes_are_the_only_documented_difference(database_url: str) -> None:
    async def ingest_like() -> None:
        db = create_async_engine(database_url, 1)
        try:
            await ensure_index(db, 384, set())
        finally:
            await db.dispose()

    asyncio.run(ingest_like())
    found = differences(database_url)
    assert [_index_of(diff) for diff in found] == [index_name(384)]
    assert all(RUN_TIME_INDEX.match(_index_of(diff) or "") for diff in found)
