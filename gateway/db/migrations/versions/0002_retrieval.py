"""retrieval: files, vector stores, ingestion jobs, chunks (pgvector halfvec + full text)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 04:02:19.249303
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import UserDefinedType

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


class _HalfVec(UserDefinedType):  # type: ignore[type-arg]
    # Untyped on purpose: the dimension comes from the embedding model, and each one gets
    # its own HNSW expression index when first seen (gateway.rag.index).
    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "halfvec"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seq"),
    )
    op.create_index("ix_files_owner_seq", "files", ["owner", "seq"], unique=False)
    op.create_table(
        "vector_stores",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("expires_after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_active_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seq"),
    )
    op.create_index("ix_vector_stores_owner_seq", "vector_stores", ["owner", "seq"], unique=False)
    op.create_table(
        "file_parts",
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("file_id", "part"),
    )
    # Parts are mostly compressed already (PDF) or small; pglz on 1 MiB values costs more
    # CPU than it saves.
    op.execute("ALTER TABLE file_parts ALTER COLUMN data SET STORAGE EXTERNAL")
    op.create_table(
        "vector_store_file_batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("vector_store_id", sa.String(length=40), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["vector_store_id"], ["vector_stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_vector_store_file_batches_vector_store_id"),
        "vector_store_file_batches",
        ["vector_store_id"],
        unique=False,
    )
    op.create_table(
        "vector_store_files",
        sa.Column("vector_store_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("chunking_type", sa.String(length=8), nullable=False),
        sa.Column("max_chunk_tokens", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap_tokens", sa.Integer(), nullable=False),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["vector_store_file_batches.id"], ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["vector_store_id"], ["vector_stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("vector_store_id", "file_id"),
        sa.UniqueConstraint("seq"),
    )
    op.create_index("ix_vector_store_files_batch", "vector_store_files", ["batch_id"], unique=False)
    op.create_index(
        op.f("ix_vector_store_files_file_id"), "vector_store_files", ["file_id"], unique=False
    )
    op.create_index(
        "ix_vector_store_files_pending",
        "vector_store_files",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("status = 'in_progress'"),
    )
    op.create_index(
        "ix_vector_store_files_store_seq",
        "vector_store_files",
        ["vector_store_id", "seq"],
        unique=False,
    )
    op.create_table(
        "chunks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("vector_store_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("embedding", _HalfVec(), nullable=False),
        sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english'::regconfig, text)", persisted=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["vector_store_id", "file_id"],
            ["vector_store_files.vector_store_id", "vector_store_files.file_id"],
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    # fastupdate off: a GIN pending list is scanned linearly by every search until vacuum.
    # (ix_chunks_tsv keeps it, for cheap inserts: the ingestion worker merges it per file.)
    op.create_index(
        "ix_chunks_attributes",
        "chunks",
        ["attributes"],
        unique=False,
        postgresql_using="gin",
        postgresql_with={"fastupdate": "off"},
        postgresql_ops={"attributes": "jsonb_path_ops"},
    )
    op.create_index("ix_chunks_store_file", "chunks", ["vector_store_id", "file_id"], unique=False)
    op.create_index(
        "ix_chunks_tsv",
        "chunks",
        ["tsv"],
        unique=False,
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_chunks_tsv",
        table_name="chunks",
        postgresql_using="gin",
    )
    op.drop_index("ix_chunks_store_file", table_name="chunks")
    op.drop_index(
        "ix_chunks_attributes",
        table_name="chunks",
        postgresql_using="gin",
        postgresql_with={"fastupdate": "off"},
        postgresql_ops={"attributes": "jsonb_path_ops"},
    )
    op.drop_table("chunks")
    op.drop_index("ix_vector_store_files_store_seq", table_name="vector_store_files")
    op.drop_index(
        "ix_vector_store_files_pending",
        table_name="vector_store_files",
        postgresql_where=sa.text("status = 'in_progress'"),
    )
    op.drop_index(op.f("ix_vector_store_files_file_id"), table_name="vector_store_files")
    op.drop_index("ix_vector_store_files_batch", table_name="vector_store_files")
    op.drop_table("vector_store_files")
    op.drop_index(
        op.f("ix_vector_store_file_batches_vector_store_id"), table_name="vector_store_file_batches"
    )
    op.drop_table("vector_store_file_batches")
    op.drop_table("file_parts")
    op.drop_index("ix_vector_stores_owner_seq", table_name="vector_stores")
    op.drop_table("vector_stores")
    op.drop_index("ix_files_owner_seq", table_name="files")
    op.drop_table("files")
