"""What a key looks like on the way in (KeyCreate, for the API and the CLI alike) and on
the way out (key_view: JSON-ready, ISO-8601 times, never the hash). Pure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

# Strict: JSON `"5"`, `5.5` or `true` for a limit is a client bug worth a 400, not a guess.
Limit32 = Annotated[int | None, Field(default=None, strict=True, gt=0, le=2**31 - 1)]
Limit64 = Annotated[int | None, Field(default=None, strict=True, gt=0, le=2**63 - 1)]
_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_Model = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
END_USER_FIELDS = (
    "end_user_rpm",
    "end_user_tpm",
    "end_user_max_parallel",
    "end_user_daily_tokens",
    "end_user_monthly_tokens",
)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: _Name
    # None: every model. An empty list would be a key that can do nothing; refuse it.
    models: list[_Model] | None = Field(default=None, min_length=1, max_length=200)
    rpm: Limit32
    tpm: Limit32
    max_parallel: Limit32
    daily_tokens: Limit64
    monthly_tokens: Limit64
    expires_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=64)
    # Open WebUI and other apps that serve many people under this one key: the gateway
    # then reads who each request is for, and the end_user_* limits apply per person.
    trusted_front_end: bool = Field(default=False, strict=True)
    end_user_rpm: Limit32
    end_user_tpm: Limit32
    end_user_max_parallel: Limit32
    end_user_daily_tokens: Limit64
    end_user_monthly_tokens: Limit64

    @model_validator(mode="after")
    def _end_users_need_trust(self) -> KeyCreate:
        named = [f for f in END_USER_FIELDS if getattr(self, f) is not None]
        if named and not self.trusted_front_end:
            raise ValueError(
                f"{named[0]} applies to end users, who are read only from a trusted front "
                "end: set trusted_front_end to true as well"
            )
        return self

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # a bare timestamp is read as UTC, as the API reports times
            value = value.replace(tzinfo=UTC)
        if value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value

    def resolved_models(self, resolve: Callable[[str], str]) -> list[str] | None:
        """Aliases become served model ids (what the request path compares), deduplicated."""
        if self.models is None:
            return None
        return list(dict.fromkeys(resolve(m) for m in self.models))


class KeyRow(Protocol):
    """The columns key_view reads (gateway.db.models.ApiKey has them)."""

    id: str
    name: str
    prefix: str
    owner: str
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    daily_tokens: int | None
    monthly_tokens: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    metadata_: dict[str, Any]
    created_at: datetime
    last_used_at: datetime | None
    trusted_front_end: bool
    end_user_rpm: int | None
    end_user_tpm: int | None
    end_user_max_parallel: int | None
    end_user_daily_tokens: int | None
    end_user_monthly_tokens: int | None


def key_status(row: KeyRow, now: datetime) -> str:
    if row.revoked_at is not None and row.revoked_at <= now:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def _iso(value: datetime | None) -> str | None:
    # One zone in every answer, whatever the database session's TimeZone is.
    return value.astimezone(UTC).isoformat() if value is not None else None


def key_view(row: KeyRow, now: datetime) -> dict[str, Any]:
    return {
        "object": "api_key",
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "owner": row.owner,
        "status": key_status(row, now),
        "models": row.models,
        "rpm": row.rpm,
        "tpm": row.tpm,
        "max_parallel": row.max_parallel,
        "daily_tokens": row.daily_tokens,
        "monthly_tokens": row.monthly_tokens,
        "expires_at": _iso(row.expires_at),
        "revoked_at": _iso(row.revoked_at),
        "metadata": row.metadata_ or {},
        "created_at": _iso(row.created_at),
        "last_used_at": _iso(row.last_used_at),
        "trusted_front_end": bool(row.trusted_front_end),
        **{name: getattr(row, name) for name in END_USER_FIELDS},
    }
