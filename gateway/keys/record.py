"""A key as the request path sees it: immutable, cached, never holding the secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class EndUserLimits:
    """One person's limits under a trusted front end's key; None: no such limit."""

    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None

    def over(self, defaults: EndUserLimits) -> EndUserLimits:
        """These limits where set, the key's defaults elsewhere (an override names only
        what differs for that person)."""
        return EndUserLimits(
            self.rpm if self.rpm is not None else defaults.rpm,
            self.tpm if self.tpm is not None else defaults.tpm,
            self.max_parallel if self.max_parallel is not None else defaults.max_parallel,
            self.daily_tokens if self.daily_tokens is not None else defaults.daily_tokens,
            self.monthly_tokens if self.monthly_tokens is not None else defaults.monthly_tokens,
        )

    @property
    def unlimited(self) -> bool:
        return (
            self.rpm is None
            and self.tpm is None
            and self.max_parallel is None
            and self.daily_tokens is None
            and self.monthly_tokens is None
        )


NO_END_USER_LIMITS = EndUserLimits()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    # Served model ids this key may use (aliases resolved at creation); None means all.
    models: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Whose files and vector stores this key reaches; None (the admin) reaches all.
    owner: str | None = None
    # A front end (Open WebUI) trusted to say which person each request is for; only then
    # are its forwarded identity headers and `user` field read (gateway.keys.end_users).
    trusted_front_end: bool = False
    end_user_defaults: EndUserLimits = NO_END_USER_LIMITS
    # Per-person overrides set through the admin API; loaded with the key, so changing one
    # invalidates the key on every replica like any other key change.
    end_user_overrides: Mapping[str, EndUserLimits] = field(default_factory=dict)

    def end_user_limits(self, end_user: str) -> EndUserLimits:
        override = self.end_user_overrides.get(end_user)
        defaults = self.end_user_defaults
        return defaults if override is None else override.over(defaults)

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models

    def usable_at(self, now: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at
