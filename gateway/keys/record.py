"""A key as the request path sees it: immutable, cached, never holding the secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models

    def usable_at(self, now: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at
