"""Tables. Usage is an append-only event log (partitioned by month) plus per-period counters
and an hourly/daily rollup updated per batch, never per request (a counter row updated by
every request is a known deadlock source)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    # sha256 of the secret: keys are 190+ bits of randomness, so a slow KDF buys nothing.
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # The first characters of the secret, to recognise a key in lists (`sk-gw-AbC1…`).
    prefix: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(Text)
    models: Mapped[list[str] | None] = mapped_column(ARRAY(Text), nullable=True)
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    max_parallel: Mapped[int | None] = mapped_column(Integer)
    daily_tokens: Mapped[int | None] = mapped_column(BigInteger)
    monthly_tokens: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A front end (Open WebUI) whose requests name the person they are for; its end users'
    # limits default to the end_user_* columns (gateway.keys.end_users).
    trusted_front_end: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    end_user_rpm: Mapped[int | None] = mapped_column(Integer)
    end_user_tpm: Mapped[int | None] = mapped_column(Integer)
    end_user_max_parallel: Mapped[int | None] = mapped_column(Integer)
    end_user_daily_tokens: Mapped[int | None] = mapped_column(BigInteger)
    end_user_monthly_tokens: Mapped[int | None] = mapped_column(BigInteger)


class EndUserLimit(Base):
    """One end user's limits under a trusted key, field by field over the key's defaults."""

    __tablename__ = "end_user_limits"

    key_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    end_user: Mapped[str] = mapped_column(String(256), primary_key=True)
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    max_parallel: Mapped[int | None] = mapped_column(Integer)
    daily_tokens: Mapped[int | None] = mapped_column(BigInteger)
    monthly_tokens: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UsageEvent(Base):
    """Range-partitioned by UTC month (gateway.usage.partitions creates and drops the
    partitions): retention drops a month at once, and the primary key must hold the
    partition column."""

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_key_time", "key_id", "created_at"),
        Index("ix_usage_events_time", "created_at"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(Text)
    route: Mapped[str] = mapped_column(Text)
    upstream: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[float] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    # The person a trusted front end said the request was for; NULL otherwise.
    end_user: Mapped[str | None] = mapped_column(Text)


class UsageRollup(Base):
    """usage_events summed per UTC hour and per UTC day (gateway.usage.rollup), kept by
    the batch writer: reports over whole hours and days read it instead of the events."""

    __tablename__ = "usage_rollup"
    __table_args__ = (
        # NULLS NOT DISTINCT: the requests of no key, or of no named end user, are one row.
        Index(
            "ux_usage_rollup_group",
            "period",
            "start",
            "key_id",
            "model",
            "end_user",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_usage_rollup_key", "key_id", "period", "start"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    period: Mapped[str] = mapped_column(String(4))  # "hour" | "day"
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(Text)
    end_user: Mapped[str | None] = mapped_column(Text)
    requests: Mapped[int] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    rate_limited: Mapped[int] = mapped_column(BigInteger)
    cancelled: Mapped[int] = mapped_column(BigInteger)
    ttft_ms_sum: Mapped[float] = mapped_column(Float)
    ttft_count: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsageCounter(Base):
    """Tokens and requests per key per UTC day and month, for quota checks."""

    __tablename__ = "usage_counters"

    # A key's id, or `<key id>/<end user>` for an end user's counters under that key.
    key_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    period: Mapped[str] = mapped_column(String(5), primary_key=True)  # "day" | "month"
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)


# -- Retrieval: files, vector stores, ingestion jobs and chunks (gateway.rag) -------------


class HalfVec(UserDefinedType[Any]):
    """pgvector's `halfvec` without a fixed dimension: the embedding model decides it, and
    each dimension gets its own HNSW expression index (gateway.rag.index)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "halfvec"


class StoredFile(Base):
    """An uploaded file; its bytes live in `file_parts`, so replicas share them."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_owner_seq", "owner", "seq"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Creation order for cursor paging (ids are random, timestamps can tie).
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    # The key's owner; NULL for files the admin created (the admin sees every owner's).
    owner: Mapped[str | None] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FilePart(Base):
    """About 1 MiB of a file's bytes: uploads are written part by part, never held whole."""

    __tablename__ = "file_parts"

    file_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class VectorStore(Base):
    __tablename__ = "vector_stores"
    __table_args__ = (Index("ix_vector_stores_owner_seq", "owner", "seq"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    owner: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    expires_after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_active_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class VectorStoreFileBatch(Base):
    __tablename__ = "vector_store_file_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    vector_store_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("vector_stores.id", ondelete="CASCADE"), index=True
    )
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VectorStoreFile(Base):
    """A file in a store, and its ingestion job: the status is the job's state, and a lease
    (lease_until, leased_by) lets one replica at a time work on it."""

    __tablename__ = "vector_store_files"
    __table_args__ = (
        Index("ix_vector_store_files_store_seq", "vector_store_id", "seq"),
        Index("ix_vector_store_files_batch", "batch_id"),
        Index(
            "ix_vector_store_files_pending",
            "seq",
            postgresql_where=text("status = 'in_progress'"),
        ),
    )

    vector_store_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("vector_stores.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("files.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    batch_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("vector_store_file_batches.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default="in_progress")
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    chunking_type: Mapped[str] = mapped_column(String(8), default="auto")
    max_chunk_tokens: Mapped[int] = mapped_column(Integer, default=800)
    chunk_overlap_tokens: Mapped[int] = mapped_column(Integer, default=400)
    usage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # The key that attached the file: its limits and usage pay for the embedding (NULL for
    # files attached before keys were recorded here; those are not metered).
    key_id: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    leased_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Chunk(Base):
    """A piece of a file with its embedding and full-text vector. Attributes are copied from
    the vector store file so that filters apply inside the index scan, without a join."""

    __tablename__ = "chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["vector_store_id", "file_id"],
            ["vector_store_files.vector_store_id", "vector_store_files.file_id"],
            ondelete="CASCADE",
        ),
        Index("ix_chunks_store_file", "vector_store_id", "file_id"),
        # The ingestion worker merges this index's pending list every few seconds while files
        # complete, and when it runs out of work (gateway.rag.ingestion.text_index): searches
        # never scan a long unmerged list, and inserts keep GIN's cheap batched path (each
        # chunk has hundreds of lexemes).
        Index("ix_chunks_tsv", "tsv", postgresql_using="gin"),
        Index(
            "ix_chunks_attributes",
            "attributes",
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
            postgresql_ops={"attributes": "jsonb_path_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    vector_store_id: Mapped[str] = mapped_column(String(40))
    file_id: Mapped[str] = mapped_column(String(40))
    idx: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    dims: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[Any] = mapped_column(HalfVec())
    tsv: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english'::regconfig, text)", persisted=True)
    )


class ChunkStaging(Base):
    """Chunks one run of an ingestion job has embedded so far. The run that completes the
    file moves its rows into `chunks` in the same transaction that marks the file
    completed, so search never sees half a file or a mix of two runs. Unlogged (the rows
    can be made again); a run counts its rows before moving them."""

    __tablename__ = "chunk_staging"
    __table_args__ = (
        ForeignKeyConstraint(
            ["vector_store_id", "file_id"],
            ["vector_store_files.vector_store_id", "vector_store_files.file_id"],
            ondelete="CASCADE",
        ),
        {"prefixes": ["UNLOGGED"]},
    )

    vector_store_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    file_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run: Mapped[str] = mapped_column(String(32), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    dims: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[Any] = mapped_column(HalfVec())


class EvalRun(Base):
    """One `gateway eval` result for one model (and deploy profile): its summary for lists,
    the whole result with every case's raw output for the detail view."""

    __tablename__ = "eval_runs"
    __table_args__ = (
        Index("ix_eval_runs_created_at", "created_at"),
        Index("ix_eval_runs_model_created_at", "model", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    model: Mapped[str] = mapped_column(Text)
    profile: Mapped[str | None] = mapped_column(Text)
    suite: Mapped[str] = mapped_column(Text)
    interrupted: Mapped[bool] = mapped_column(Boolean)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LoraAdapter(Base):
    """A LoRA adapter loaded through `POST /admin/adapters`, as asked (the configuration's
    are not stored): every process keeps it loaded, and a restart loads it again."""

    __tablename__ = "lora_adapters"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    base_model: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
