"""When a vector store expires, and what that stops.

A store with `expires_after` expires `days` after its `last_active_at`, which a search
moves forward. As at OpenAI, an expired store is no longer available for use: searching it
and adding files to it are refused (400, `vector_store_expired`). It can still be read,
listed and deleted, and setting `expires_after` again revives it, counting from then. Its
files and chunks are kept: nothing of a user's documents is deleted behind their back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from gateway.errors import InvalidRequest


def expires_at(expires_after: Mapping[Any, Any] | None, last_active: datetime) -> datetime | None:
    if not expires_after:
        return None
    return last_active + timedelta(days=int(expires_after["days"]))


def expired_sql(table: str) -> str:
    """Whether a row of `vector_stores` (named `table` in the statement) has expired; never
    NULL (a store without `expires_after` holds SQL or JSON null there)."""
    days = f"({table}.expires_after->>'days')::int"
    return f"coalesce({table}.last_active_at + make_interval(days => {days}) <= now(), false)"


def store_expired(store_id: str, param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Vector store '{store_id}' has expired and can no longer be used. Set its "
        "expires_after again (POST /v1/vector_stores/{id}) to use it, or create a new one.",
        param=param,
        code="vector_store_expired",
    )
