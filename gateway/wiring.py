"""Building the gateway's resources (gateway.state) in its lifespan, in one place, and
tearing them down in reverse: the engine client and its monitor always; with a database,
Postgres, the key store, usage, quotas and the limiter, then retrieval and its worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

from gateway import __version__
from gateway.admission.guard import Guard
from gateway.config import Settings
from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.eval.routes import EvalStore
from gateway.keys.auth import Authenticator
from gateway.keys.callers import key_check
from gateway.keys.routes import KeyAdmin
from gateway.keys.store import KeyStore
from gateway.limits import Limiter
from gateway.metrics import Metrics
from gateway.rag.ingestion.worker import IngestWorker, start_worker
from gateway.rag.resources import Retrieval, open_retrieval
from gateway.state import STATE_KEY, AppState, Storage
from gateway.upstream.adapters.manager import Adapters
from gateway.upstream.adapters.store import AdapterStore
from gateway.upstream.client import create_session
from gateway.upstream.engines import Engines
from gateway.upstream.monitor import Monitor
from gateway.upstream.registry import Registry
from gateway.upstream.relay import Relay
from gateway.upstream.switching.setup import build_switcher
from gateway.usage import QuotaChecker, UsageWriter
from gateway.usage.partitions import PartitionKeeper
from gateway.usage.routes import UsageReports
from gateway.usage.unrecorded import Unrecorded

log = logging.getLogger("gateway")

# Cancelled requests only record an event and free a slot (one Redis round trip at most).
_RECORD_WAIT_S = 5.0


@asynccontextmanager
async def running(settings: Settings, metrics: Metrics) -> AsyncIterator[AppState]:
    """Everything the routes use, started; stopped in reverse when the block ends."""
    async with AsyncExitStack() as stack:
        session = create_session(settings)
        stack.push_async_callback(session.close)
        registry = Registry(settings.engine_urls(), settings.model_aliases)
        # Engine groups: models sharing a device, switched on demand (None without groups).
        switcher = build_switcher(settings, session, registry, metrics)
        monitor = Monitor(
            registry, session, settings, metrics, switcher.asleep if switcher else None
        )
        engines = Engines(
            session,
            registry,
            settings,
            metrics,
            lambda u, why: monitor.set_health(u, False, why),
            switcher,
        )
        storage: Storage | None = None
        if settings.database_url:
            storage = await _storage(settings.database_url, settings, metrics, stack)
        # LoRA adapters: kept loaded after each discovery and each wake of an engine.
        adapters = Adapters(
            engines,
            settings.models_dir,
            monitor.rediscover,
            settings.lora_adapters,
            AdapterStore(storage.db) if storage is not None else None,
        )
        monitor.after_discovery = adapters.restore
        if switcher is not None:
            switcher.on_wake = adapters.restore_after_restart
            await switcher.start()
            stack.push_async_callback(switcher.stop)
        if not settings.engine_urls():
            log.warning("GATEWAY_UPSTREAMS is empty: no model can be served")
        retrieval: Retrieval | None = None
        worker: IngestWorker | None = None
        if settings.database_url and storage is not None:
            guard = Guard(
                settings,
                metrics,
                storage.keys,
                quotas=storage.quotas,
                limiter=storage.limiter,
                usage=storage.usage,
            )
            retrieval = await open_retrieval(settings.database_url, settings, guard, engines)
            stack.push_async_callback(retrieval.close)
            # Ingestion jobs live in Postgres; the worker stops before the pools close and
            # hands unfinished files back.
            worker = await start_worker(retrieval)
            stack.push_async_callback(worker.stop)
        else:
            log.warning(
                "GATEWAY_DATABASE_URL is not set: no API keys, limits or usage records "
                "(with GATEWAY_ADMIN_KEY, /v1 takes that key alone)"
            )
            guard = Guard(settings, metrics, key_check(settings, None))
        state = AppState(
            settings,
            metrics,
            engines,
            Relay(engines),
            monitor,
            guard,
            Unrecorded(),
            adapters,
            storage,
            retrieval,
            worker,
        )
        await monitor.check_all()
        monitor.start()
        stack.push_async_callback(monitor.stop)
        log.info(
            "gateway ready", extra={"upstreams": settings.engine_urls(), "version": __version__}
        )
        yield state
        # uvicorn cancels the requests a graceful stop gave up on and comes here at once:
        # let them record their usage before the writer's final flush.
        if not await state.unrecorded.wait_idle(_RECORD_WAIT_S):
            log.error(
                "requests still unmetered at shutdown", extra={"requests": state.unrecorded.count}
            )
        # Unwinding the stack stops the monitor, the worker, then flushes usage, then
        # closes the database.


def published(state: AppState) -> dict[str, object]:
    """What goes on the app's `state`, by name: the whole for the entry routes (api/,
    ops/), and each capability's own part, which its routes read (gateway.http.app_state)."""
    found: dict[str, object] = {STATE_KEY: state}
    if state.storage is not None:
        store, keys = state.storage, state.storage.keys
        found["key_admin"] = KeyAdmin(
            KeyStore(store.db), keys.invalidate, state.engines.registry.served_id
        )
        found["usage_reports"] = UsageReports(store.db)
        found["eval_store"] = EvalStore(store.db)
    if state.retrieval is not None:
        found["retrieval"] = state.retrieval
    return found


async def _storage(
    database_url: str, settings: Settings, metrics: Metrics, stack: AsyncExitStack
) -> Storage:
    """Postgres-backed keys, usage and quotas, plus the limiter; torn down in reverse."""
    if settings.migrate_on_start:
        await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url, settings.db_pool_size)
    stack.push_async_callback(engine.dispose)
    keys = Authenticator(settings, engine, metrics)
    await keys.start()
    stack.push_async_callback(keys.stop)
    usage = UsageWriter(engine, settings, metrics)
    usage.start()
    stack.push_async_callback(usage.stop)
    days = settings.usage_retention_days
    partitions = PartitionKeeper(engine, timedelta(days=days) if days else None)
    partitions.start()
    stack.push_async_callback(partitions.stop)
    quotas = QuotaChecker(engine, usage)
    quotas.start()
    stack.push_async_callback(quotas.stop)
    limiter = await Limiter.create(settings, metrics)
    stack.push_async_callback(limiter.close)
    return Storage(engine, keys, limiter, usage, quotas)
