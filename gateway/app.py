"""The app factory: FastAPI for the operator routes, pure ASGI for the hot OpenAI routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from gateway import __version__
from gateway.api.models_routes import PREFIX as MODELS_PREFIX
from gateway.api.models_routes import ModelsRoute
from gateway.api.openai_proxy import ProxyRoute
from gateway.api.request_checks import Endpoint
from gateway.config import Settings
from gateway.db.engine import create_engine, session_factory
from gateway.db.migrate import upgrade
from gateway.http import exception_handlers
from gateway.http.asgi import ASGIApp
from gateway.http.body_limit import BodyClass, BodyClasses, BodyLimit
from gateway.http.body_pace import Pace
from gateway.http.context import RequestContextMiddleware
from gateway.http.cors import BrowserCORS
from gateway.http.dispatch import FastPathRouter
from gateway.keys.auth import Authenticator
from gateway.keys.routes import router as keys_router
from gateway.limits import Limiter
from gateway.logs import access_log
from gateway.metrics import Metrics
from gateway.ops.engines import router as engines_router
from gateway.ops.routes import router as ops_router
from gateway.rag.resources import open_retrieval
from gateway.rag.routes import router as rag_router
from gateway.rag.worker import start_worker
from gateway.services import Services
from gateway.ui import install as install_console
from gateway.ui.refusal import render_refusal
from gateway.ui.web import MAX_FORM_BYTES
from gateway.upstream.client import create_session
from gateway.upstream.monitor import Monitor
from gateway.upstream.registry import Registry
from gateway.upstream.relay import Relay
from gateway.usage import QuotaChecker, UsageWriter
from gateway.usage.routes import router as usage_router

log = logging.getLogger("gateway")

# Cancelled requests only record an event and free a slot (one Redis round trip at most).
_RECORD_WAIT_S = 5.0

# Headers browser clients (Open WebUI direct connections, the SDKs in a browser) read.
_EXPOSED_HEADERS = [
    "x-request-id",
    "retry-after",
    "retry-after-ms",
    "x-gateway-rag-passages-used",
    "x-gateway-rag-passages-dropped",
    "x-gateway-rag-turns-dropped",
    *(
        f"x-ratelimit-{what}-{kind}"
        for what in ("limit", "remaining", "reset")
        for kind in ("requests", "tokens")
    ),
]
# Multipart framing around an uploaded file: boundaries, part headers, the `purpose` field.
_UPLOAD_FRAMING_BYTES = 1024 * 1024
# Operations routes and unknown paths take no body worth the name.
_OTHER_BODY_BYTES = 64 * 1024


def body_classes(settings: Settings) -> BodyClasses:
    upload = settings.max_upload_bytes + _UPLOAD_FRAMING_BYTES
    return BodyClasses(
        proxy=BodyClass(settings.max_body_bytes, "GATEWAY_MAX_BODY_BYTES"),
        upload=BodyClass(upload, "GATEWAY_MAX_UPLOAD_BYTES"),
        admin=BodyClass(settings.max_admin_body_bytes, "GATEWAY_MAX_ADMIN_BODY_BYTES"),
        console=BodyClass(MAX_FORM_BYTES, "the console's form limit", render_refusal),
        console_upload=BodyClass(upload, "GATEWAY_MAX_UPLOAD_BYTES", render_refusal),
        other=BodyClass(_OTHER_BODY_BYTES, "the limit for this route"),
    )


def create_app(settings: Settings) -> ASGIApp:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            session = create_session(settings)
            stack.push_async_callback(session.close)
            registry = Registry(settings.upstreams, settings.model_aliases)
            monitor = Monitor(registry, session, settings, metrics)
            relay = Relay(session, metrics, lambda u, why: monitor.set_health(u, False, why))
            services = Services(settings, metrics, session, registry, monitor, relay)
            app.state.services = services
            if not settings.upstreams:
                log.warning("GATEWAY_UPSTREAMS is empty: no model can be served")
            if settings.database_url:
                await _start_storage(services, stack)
                # Ingestion jobs live in Postgres; the worker stops before the database
                # closes (the stack unwinds in reverse) and hands unfinished files back.
                app.state.rag_worker = await start_worker(services)
                stack.push_async_callback(app.state.rag_worker.stop)
            else:
                log.warning(
                    "GATEWAY_DATABASE_URL is not set: the gateway runs open, without API keys, "
                    "limits or usage records"
                )
            await monitor.check_all()
            monitor.start()
            stack.push_async_callback(monitor.stop)
            log.info(
                "gateway ready", extra={"upstreams": settings.upstreams, "version": __version__}
            )
            yield
            # uvicorn cancels the requests a graceful stop gave up on and comes here at
            # once: let them record their usage before the writer's final flush.
            if not await services.unrecorded.wait_idle(_RECORD_WAIT_S):
                log.error(
                    "requests still unmetered at shutdown",
                    extra={"requests": services.unrecorded.count},
                )
            # Unwinding the stack stops the monitor, then flushes usage, then closes the DB.

    api = FastAPI(
        title="gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    exception_handlers.install(api)
    api.include_router(ops_router)
    api.include_router(keys_router)
    api.include_router(usage_router)
    api.include_router(rag_router)
    api.include_router(engines_router)

    routes: dict[str, ASGIApp] = {e.value: ProxyRoute(api, e) for e in Endpoint}
    models = ModelsRoute(api)
    routes[MODELS_PREFIX] = models
    app: ASGIApp = FastPathRouter(routes, api, prefixes={MODELS_PREFIX + "/": models})
    pace = Pace(
        settings.body_idle_timeout_s, settings.body_min_bytes_per_s, settings.body_rate_grace_s
    )
    # Inside the request context (its id and access log cover refusals), outside everything
    # that reads a body, authentication included.
    app = BodyLimit(app, body_classes(settings), pace)
    access = settings.access_log and settings.log_level in ("debug", "info")
    app = RequestContextMiddleware(
        app, metrics, access_log(settings.log_format) if access else None
    )
    app = BrowserCORS(app, settings.cors_origins, _EXPOSED_HEADERS)
    app.state = api.state  # type: ignore[attr-defined]
    install_console(api, app)  # /ui: its pages call the public API through `app`
    return app


async def _start_storage(services: Services, stack: AsyncExitStack) -> None:
    """Postgres-backed keys, usage and quotas, plus the limiter; torn down in reverse."""
    settings = services.settings
    assert settings.database_url is not None
    if settings.migrate_on_start:
        await asyncio.to_thread(upgrade, settings.database_url)
    engine = create_engine(settings.database_url, settings.db_pool_size)
    stack.push_async_callback(engine.dispose)
    services.db = engine
    services.sessions = session_factory(engine)
    services.rag = open_retrieval(settings, services.metrics)
    stack.push_async_callback(services.rag.close)
    services.keys = Authenticator(settings, engine, services.metrics)
    await services.keys.start()
    stack.push_async_callback(services.keys.stop)
    services.usage = UsageWriter(engine, settings, services.metrics)
    services.usage.start()
    stack.push_async_callback(services.usage.stop)
    services.quotas = QuotaChecker(engine, services.usage)
    services.quotas.start()
    stack.push_async_callback(services.quotas.stop)
    services.limiter = await Limiter.create(settings, services.metrics)
    stack.push_async_callback(services.limiter.close)


def app_from_env() -> ASGIApp:
    """Factory for uvicorn workers: each builds its settings from the environment."""
    from gateway.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
