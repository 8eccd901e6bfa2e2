"""Who is asking, and which files and stores they reach.

Every file and vector store belongs to the `owner` of the key that created it; other keys
get 404s and never see it listed. The admin key (owner None) reaches every owner's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from gateway.errors import NeedsDatabase
from gateway.http.app_state import attribute
from gateway.http.context import CONTEXT_KEY
from gateway.keys.record import KeyRecord
from gateway.rag.resources import Retrieval

NEEDS_DATABASE = (
    "Files, vector stores and file search keep their data in Postgres: set "
    "GATEWAY_DATABASE_URL on the gateway to use them."
)


@dataclass(frozen=True, slots=True)
class Caller:
    owner: str | None  # stored on what this caller creates
    sees_all: bool
    # The key itself: its limits and usage pay for the embedding of files it attaches.
    key_id: str | None = None

    def condition(self, column: str, params: dict[str, Any]) -> str:
        """SQL restricting `column` (an owner column) to what this caller may see."""
        if self.sees_all:
            return "TRUE"
        params["caller_owner"] = self.owner
        return f"{column} = :caller_owner"


def caller_for(key: KeyRecord | None) -> Caller:
    key_id = key.id if key is not None else None
    if key is None or key.owner is None:
        return Caller(owner=None, sees_all=True, key_id=key_id)
    return Caller(owner=key.owner, sees_all=False, key_id=key_id)


def retrieval(request: Request) -> Retrieval:
    """FastAPI dependency: what retrieval works with (its routes are mounted only with a
    database; without one, `gateway.rag.routes` answers 503 for them)."""
    found = attribute(request.app.state, "retrieval", Retrieval)
    if found is None:
        raise NeedsDatabase(NEEDS_DATABASE)
    return found


def request_id(request: Request) -> str:
    """The request's id (x-request-id), for the usage events of what it causes."""
    context = request.scope.get(CONTEXT_KEY)
    return context.request_id if context is not None else uuid.uuid4().hex


async def caller(request: Request) -> Caller:
    """FastAPI dependency: the authenticated caller."""
    key = await retrieval(request).guard.authenticate(request.scope)
    context = request.scope.get(CONTEXT_KEY)
    if context is not None and key is not None:
        context.key_id = key.id
    return caller_for(key)


Who = Annotated[Caller, Depends(caller)]
Rag = Annotated[Retrieval, Depends(retrieval)]
