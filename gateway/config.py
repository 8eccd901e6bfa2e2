"""The one settings object: `GATEWAY_*` environment variables, optionally a YAML file.

Precedence, highest first: explicit init arguments (the CLI's flags), environment,
the YAML file named by `GATEWAY_CONFIG`, defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from gateway.upstream.adapters.spec import AdapterPathError, AdapterSpec, confined_path
from gateway.upstream.switching.config import EngineGroup, check_groups

CONFIG_ENV = "GATEWAY_CONFIG"


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def normalise_upstream_url(url: str) -> str:
    """Engine root URL without a trailing slash or `/v1` (both are tolerated on input)."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", extra="ignore", validate_default=True, frozen=True
    )

    # Where to listen (the CLI's --host/--port/--workers override these).
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1)

    upstreams: Annotated[list[str], NoDecode] = Field(default_factory=list)
    upstream_api_key: SecretStr | None = None
    # Alias -> served model id, e.g. {"gpt-4o-mini": "smollm2-135m-instruct"}.
    model_aliases: dict[str, str] = Field(default_factory=dict)
    # Engines sharing a device, switched on demand (gateway.upstream.switching); their
    # URLs need not be repeated in `upstreams`. JSON in the environment, or YAML.
    engine_groups: list[EngineGroup] = Field(default_factory=list)
    # Where model weights and LoRA adapters live, as the engines see it (the models
    # volume): adapter paths are confined to it.
    models_dir: str = "/models"
    # LoRA adapters loaded on the engines serving their base model at start, and again
    # whenever such an engine comes back without them. YAML, or JSON in the environment.
    lora_adapters: list[AdapterSpec] = Field(default_factory=list)

    database_url: str | None = None
    # Without a database (no keys), `gateway serve` refuses a non-loopback host unless this
    # is true: a gateway that answers anyone must be a choice, not an accident.
    allow_open: bool = False
    redis_url: str | None = None
    admin_key: SecretStr | None = None
    embedding_model: str | None = None
    # `gateway serve` applies pending migrations at start unless this is false.
    migrate_on_start: bool = True
    db_pool_size: int = Field(10, ge=1)

    # Key records are cached per process; changes reach every replica through
    # LISTEN/NOTIFY (or Redis pub/sub), the TTL is only a backstop.
    key_cache_ttl_s: float = Field(300.0, gt=0)
    # While the database is down, cached keys keep working this long; unknown keys get 503.
    db_outage_grace_s: float = Field(600.0, ge=0)

    # Open WebUI's FORWARD_USER_INFO_HEADER_JWT_SECRET: with it, a trusted front end's end
    # users come only from its signed X-OpenWebUI-User-Jwt, never from unsigned headers.
    end_user_jwt_secret: SecretStr | None = None
    # Rate-limit states kept in memory (keys and end users alike), however many distinct
    # end users a front end names: past this, the longest-held states are forgotten.
    limiter_max_states: int = Field(100_000, ge=100)

    # Token reservation for requests that name no max_tokens (reconciled afterwards).
    default_max_tokens: int = Field(1024, ge=1)
    # The most answers one request may ask for (`n`): each holds its own engine share.
    max_n: int = Field(8, ge=1)
    # In-flight slots are leases, renewed while their request runs (every third of the
    # lease): a replica that dies, or a release lost to a Redis blip, frees them this soon.
    slot_lease_s: float = Field(30.0, gt=0)
    # `gateway serve`: how long a stop (SIGTERM) waits for running requests before it
    # cancels them (they are still metered) and flushes usage.
    shutdown_timeout_s: int = Field(30, ge=0)

    # Retrieval: uploads are streamed into Postgres; ingestion runs as leased jobs.
    max_upload_bytes: int = Field(512 * 1024 * 1024, gt=0)
    ingest_concurrency: int = Field(2, ge=1)
    ingest_lease_s: float = Field(60.0, gt=0)
    ingest_poll_s: float = Field(1.0, gt=0)
    ingest_max_attempts: int = Field(5, ge=1)
    embedding_batch_size: int = Field(64, ge=1)
    # Batches of one file being embedded at once (within the paying key's max_parallel):
    # the engine batches concurrent requests, so one file keeps it busy while its last
    # batch is staged. Memory holds this many batches more.
    embedding_parallel_batches: int = Field(2, ge=1)
    # Uploads are spooled to local disk while the client sends (no database connection is
    # held meanwhile), so these bound the spool: at most max_uploads x max_upload_bytes.
    max_uploads_per_key: int = Field(8, ge=1)  # the SDKs upload 5 at a time
    max_uploads: int = Field(32, ge=1)
    spool_dir: str | None = None  # None: the system's temporary directory (TMPDIR)
    # Retrieval's own connections, apart from the pool keys, usage and /readyz use.
    rag_db_pool_size: int = Field(6, ge=2)
    max_chunks_per_file: int = Field(50_000, ge=1)
    # PDF, HTML and JSON are parsed in a child process within these limits.
    parse_timeout_s: float = Field(120.0, gt=0)
    parse_memory_mb: int = Field(1024, ge=128)

    usage_flush_interval_s: float = Field(1.0, gt=0)
    usage_batch_size: int = Field(1000, ge=1)
    usage_buffer_max: int = Field(100_000, ge=1)
    # Usage events older than this are dropped a whole month at a time (gateway.usage.
    # partitions); None keeps them all. The hourly rollup is kept either way.
    usage_retention_days: int | None = Field(None, ge=1)

    # A 70B model's first token after a long prompt can take minutes on one consumer GPU:
    # the read timeout bounds the silence between bytes, not the whole request.
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(600.0, gt=0)
    discovery_interval_s: float = Field(30.0, gt=0)
    health_interval_s: float = Field(5.0, gt=0)

    # Bodies are capped per class of route before anything reads them (gateway.http.body_limit).
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    # Speech-to-text forms (/v1/audio/*): OpenAI's own limit for an audio file.
    max_audio_bytes: int = Field(25 * 1024 * 1024, gt=0)
    max_admin_body_bytes: int = Field(1024 * 1024, gt=0)
    # A body that stalls this long, or that averages under body_min_bytes_per_s once
    # body_rate_grace_s of waiting have passed, is cut off with 408 (slowloris). An honest
    # upload over the slowest home uplink (tens of KB/s) never comes near either rule.
    body_idle_timeout_s: float = Field(60.0, gt=0)
    body_min_bytes_per_s: float = Field(1024.0, ge=0)
    body_rate_grace_s: float = Field(60.0, gt=0)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = True

    @field_validator("upstreams", mode="before")
    @classmethod
    def _parse_upstreams(cls, value: Any) -> Any:
        value = _split_csv(value)
        if isinstance(value, list):
            return [normalise_upstream_url(str(url)) for url in value]
        return value

    @field_validator("engine_groups", mode="after")
    @classmethod
    def _disjoint_groups(cls, value: list[EngineGroup]) -> list[EngineGroup]:
        return check_groups(value)

    @field_validator("lora_adapters", mode="after")
    @classmethod
    def _check_adapters(cls, value: list[AdapterSpec], info: ValidationInfo) -> list[AdapterSpec]:
        names = [spec.name for spec in value]
        if len(set(names)) != len(names):
            raise ValueError("lora_adapters: an adapter name is listed twice")
        models_dir = info.data.get("models_dir", "/models")
        for spec in value:
            try:
                confined_path(models_dir, spec.path)
            except AdapterPathError as exc:
                raise ValueError(f"lora_adapters: {spec.name}: {exc}") from exc
        return value

    def engine_urls(self) -> list[str]:
        """Every engine the gateway talks to: the listed upstreams, then grouped engines."""
        grouped = [engine.url for group in self.engine_groups for engine in group.engines]
        return list(dict.fromkeys([*self.upstreams, *grouped]))

    @field_validator("database_url", "redis_url", "embedding_model", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # compose files pass `GATEWAY_REDIS_URL=` for an optional service that is off.
        return None if value == "" else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_path = os.environ.get(CONFIG_ENV)
        if yaml_path:
            if not Path(yaml_path).is_file():
                raise ValueError(f"{CONFIG_ENV}={yaml_path}: no such file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)
