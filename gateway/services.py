"""The per-process resources, created in the app's lifespan and kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.rag.common_terms import CommonTerms
from gateway.upstream.monitor import Monitor
from gateway.upstream.registry import Registry
from gateway.upstream.relay import Relay
from gateway.usage.unrecorded import Unrecorded

if TYPE_CHECKING:
    from gateway.keys.auth import Authenticator
    from gateway.limits import Limiter
    from gateway.rag.resources import Retrieval
    from gateway.usage import QuotaChecker, UsageWriter


@dataclass(slots=True)
class Services:
    settings: Settings
    metrics: Metrics
    session: aiohttp.ClientSession
    registry: Registry
    monitor: Monitor
    relay: Relay
    # Present when GATEWAY_DATABASE_URL is set (keys, usage); None runs the gateway open.
    db: AsyncEngine | None = None
    sessions: async_sessionmaker | None = None  # type: ignore[type-arg]
    keys: Authenticator | None = None
    limiter: Limiter | None = None
    usage: UsageWriter | None = None
    quotas: QuotaChecker | None = None
    common_terms: CommonTerms = field(default_factory=CommonTerms)  # for search
    # Proxied requests not yet metered: the lifespan lets them finish before the last flush.
    unrecorded: Unrecorded = field(default_factory=Unrecorded)
    # Retrieval's own pools and upload slots; present with the database.
    rag: Retrieval | None = None
