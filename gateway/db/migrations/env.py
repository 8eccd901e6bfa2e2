"""Alembic environment: the URL comes from `gateway.db.migrate.alembic_config`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from gateway.db.models import Base

config = context.config


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by gateway.db.migrate"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            # Two replicas starting at once must not both run the same migration.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
            context.run_migrations()
    engine.dispose()


run()
