"""metered, staged ingestion: the key that attached a file; chunks staged per run

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.types import UserDefinedType

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


class _HalfVec(UserDefinedType):  # type: ignore[type-arg]
    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "halfvec"


def upgrade() -> None:
    # Whose limits and usage the file's embedding goes to. NULL for files attached before
    # this revision: they are ingested unmetered, as they were.
    op.add_column("vector_store_files", sa.Column("key_id", sa.String(length=40), nullable=True))
    # Chunks embedded so far by one run of an ingestion job, moved into `chunks` in the
    # transaction that completes the file: search never sees part of a file. Unlogged:
    # the rows can always be made again, and a run checks that all of its rows are still
    # there (a crash empties unlogged tables) before it moves them.
    op.create_table(
        "chunk_staging",
        sa.Column("vector_store_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("run", sa.String(length=32), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("embedding", _HalfVec(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vector_store_id", "file_id"],
            ["vector_store_files.vector_store_id", "vector_store_files.file_id"],
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vector_store_id", "file_id", "run", "idx"),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("chunk_staging")
    op.drop_column("vector_store_files", "key_id")
