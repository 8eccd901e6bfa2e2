"""end users behind one key: trusted front ends, per-end-user limits and usage

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 20:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEFAULTS = (
    ("end_user_rpm", sa.Integer()),
    ("end_user_tpm", sa.Integer()),
    ("end_user_max_parallel", sa.Integer()),
    ("end_user_daily_tokens", sa.BigInteger()),
    ("end_user_monthly_tokens", sa.BigInteger()),
)


def upgrade() -> None:
    # A key whose caller (Open WebUI, another app) says which person each request is for.
    op.add_column(
        "api_keys",
        sa.Column("trusted_front_end", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    for name, type_ in _DEFAULTS:  # every end user's limits unless overridden
        op.add_column("api_keys", sa.Column(name, type_, nullable=True))
    op.add_column("usage_events", sa.Column("end_user", sa.Text(), nullable=True))
    # Counter rows of an end user are keyed `<key id>/<end user>` (ids up to 256 chars):
    # widening a varchar rewrites nothing in Postgres.
    op.alter_column(
        "usage_counters", "key_id", type_=sa.String(length=300), existing_type=sa.String(40)
    )
    op.create_table(
        "end_user_limits",
        sa.Column(
            "key_id",
            sa.String(length=40),
            sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("end_user", sa.String(length=256), primary_key=True),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tpm", sa.Integer(), nullable=True),
        sa.Column("max_parallel", sa.Integer(), nullable=True),
        sa.Column("daily_tokens", sa.BigInteger(), nullable=True),
        sa.Column("monthly_tokens", sa.BigInteger(), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_table("end_user_limits")
    op.execute("DELETE FROM usage_counters WHERE length(key_id) > 40")
    op.alter_column(
        "usage_counters", "key_id", type_=sa.String(length=40), existing_type=sa.String(300)
    )
    op.drop_column("usage_events", "end_user")
    for name, _ in reversed(_DEFAULTS):
        op.drop_column("api_keys", name)
    op.drop_column("api_keys", "trusted_front_end")
