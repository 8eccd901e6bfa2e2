"""usage rollup and retention: usage_events partitioned by month, usage_rollup

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 23:30:00.000000

The existing events move into a table range-partitioned by UTC month (one partition per
month that holds rows, this month and the next ones, and a DEFAULT partition for anything
else); ids continue from the same sequence. The rollup is backfilled from every event, so
reports read the same numbers before and after. On a large table this copies every row
once: expect about the time a `COPY` of the table takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from gateway.usage import partitions, rollup

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "id, request_id, key_id, model, route, upstream, status, prompt_tokens, "
    "completion_tokens, duration_ms, ttft_ms, streamed, cancelled, created_at, end_user"
)
_EVENTS = """
CREATE TABLE usage_events (
    id BIGINT NOT NULL DEFAULT nextval('usage_events_id_seq'),
    request_id VARCHAR(128) NOT NULL,
    key_id VARCHAR(40),
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    upstream TEXT,
    status INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    duration_ms FLOAT NOT NULL,
    ttft_ms FLOAT,
    streamed BOOLEAN NOT NULL,
    cancelled BOOLEAN NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    end_user TEXT,
    PRIMARY KEY (id, created_at)
) {partitioning}
"""


_COPY_BACK = f"INSERT INTO usage_events ({_COLUMNS}) SELECT {_COLUMNS} FROM usage_events_old"  # noqa: S608 (constants)


def _swap_out_events() -> None:
    """Rename the current table and free its index names for the new one."""
    op.execute("ALTER TABLE usage_events RENAME TO usage_events_old")
    op.execute("ALTER TABLE usage_events_old RENAME CONSTRAINT usage_events_pkey TO old_pkey")
    op.drop_index("ix_usage_events_key_time", table_name="usage_events_old")
    op.drop_index("ix_usage_events_time", table_name="usage_events_old")


def _create_events(partitioning: str) -> None:
    op.execute(_EVENTS.format(partitioning=partitioning))
    # The new table owns the sequence before the old one goes: dropping the old table
    # would otherwise drop the sequence with it.
    op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id")
    op.create_index("ix_usage_events_key_time", "usage_events", ["key_id", "created_at"])
    op.create_index("ix_usage_events_time", "usage_events", ["created_at"])


def upgrade() -> None:
    _swap_out_events()
    _create_events("PARTITION BY RANGE (created_at)")
    op.execute(f"CREATE TABLE {partitions.DEFAULT_PARTITION} PARTITION OF usage_events DEFAULT")
    bind = op.get_bind()
    months = bind.execute(
        sa.text(
            "SELECT DISTINCT date_trunc('month', created_at, 'UTC')::date FROM usage_events_old"
        )
    ).scalars()
    todo = partitions.plan([], list(months), datetime.now(UTC), retention=None)
    for month in todo.create:
        for sql in partitions.create_sql(month):
            op.execute(sql)
    op.execute(_COPY_BACK)
    op.drop_table("usage_events_old")

    op.create_table(
        "usage_rollup",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("period", sa.String(length=4), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("end_user", sa.Text(), nullable=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("rate_limited", sa.BigInteger(), nullable=False),
        sa.Column("cancelled", sa.BigInteger(), nullable=False),
        sa.Column("ttft_ms_sum", sa.Float(), nullable=False),
        sa.Column("ttft_count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(rollup.REBUILD[1])
    # After the backfill: one index build is cheaper than maintaining it row by row.
    op.create_index(
        "ux_usage_rollup_group",
        "usage_rollup",
        ["period", "start", "key_id", "model", "end_user"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_index("ix_usage_rollup_key", "usage_rollup", ["key_id", "period", "start"])


def downgrade() -> None:
    op.drop_table("usage_rollup")
    _swap_out_events()
    _create_events("")
    op.execute(_COPY_BACK)
    op.drop_table("usage_events_old")  # with its partitions
    op.execute("ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey")
    op.execute("ALTER TABLE usage_events ADD PRIMARY KEY (id)")
