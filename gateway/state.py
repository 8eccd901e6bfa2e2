"""What the app's lifespan builds (gateway.wiring), as types, and how routes reach it.

    AppState                  always: settings, metrics, the engine client and its
    │                         monitor, the guard, the graceful-stop bookkeeping
    ├── storage: Storage      with GATEWAY_DATABASE_URL: Postgres, the key store, the
    │                         limiter, the usage writer, the quotas
    ├── retrieval: Retrieval  with a database too: retrieval's pools, slots and clients
    └── ingest: IngestWorker  with a database too: this process's ingestion worker

The lifespan stores the one `AppState` on the FastAPI app's state under `gateway`, for
the entry routes (api/, ops/: `state_of(api.state)`, `StateDep`), and each capability's
own part under its own name for that capability's routes (gateway.wiring.published):
no capability imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import State

from gateway.admission.guard import Guard
from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.upstream.adapters.manager import Adapters
from gateway.upstream.engines import Engines
from gateway.upstream.monitor import Monitor
from gateway.upstream.relay import Relay
from gateway.usage.unrecorded import Unrecorded

if TYPE_CHECKING:
    from gateway.keys.auth import Authenticator
    from gateway.limits import Limiter
    from gateway.rag.ingestion.worker import IngestWorker
    from gateway.rag.resources import Retrieval
    from gateway.usage import QuotaChecker, UsageWriter

STATE_KEY = "gateway"


@dataclass(frozen=True, slots=True)
class Storage:
    db: AsyncEngine
    keys: Authenticator
    limiter: Limiter
    usage: UsageWriter
    quotas: QuotaChecker


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    metrics: Metrics
    engines: Engines
    relay: Relay
    monitor: Monitor
    guard: Guard
    # Proxied requests not yet metered: the lifespan lets them finish before the last flush.
    unrecorded: Unrecorded
    adapters: Adapters
    storage: Storage | None = None
    retrieval: Retrieval | None = None
    ingest: IngestWorker | None = None  # this process's ingestion worker, with retrieval


def state_of(holder: State) -> AppState:
    """The app's state, once its lifespan has started it."""
    state = getattr(holder, STATE_KEY, None)
    if not isinstance(state, AppState):
        raise RuntimeError("the gateway's lifespan has not started (or has stopped)")
    return state


def app_state(request: Request) -> AppState:
    return state_of(request.app.state)


StateDep = Annotated[AppState, Depends(app_state)]
