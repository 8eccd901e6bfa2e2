"""The app factory: FastAPI for the operator routes, pure ASGI for the hot OpenAI routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from gateway import __version__
from gateway.api.models_routes import PREFIX as MODELS_PREFIX
from gateway.api.models_routes import ModelsRoute
from gateway.api.openai_proxy import ProxyRoute
from gateway.api.request_checks import Endpoint
from gateway.config import Settings
from gateway.http import exception_handlers
from gateway.http.asgi import ASGIApp
from gateway.http.context import RequestContextMiddleware
from gateway.http.dispatch import FastPathRouter
from gateway.metrics import Metrics
from gateway.ops.routes import router as ops_router
from gateway.services import Services
from gateway.upstream.client import create_session
from gateway.upstream.monitor import Monitor
from gateway.upstream.registry import Registry
from gateway.upstream.relay import Relay

log = logging.getLogger("gateway")

# Headers browser clients (Open WebUI direct connections, the SDKs in a browser) read.
_EXPOSED_HEADERS = ["x-request-id", "retry-after"]


def create_app(settings: Settings) -> ASGIApp:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        session = create_session(settings)
        registry = Registry(settings.upstreams, settings.model_aliases)
        monitor = Monitor(registry, session, settings, metrics)
        relay = Relay(session, metrics, lambda u, why: monitor.set_health(u, False, why))
        app.state.services = Services(settings, metrics, session, registry, monitor, relay)
        if not settings.upstreams:
            log.warning("GATEWAY_UPSTREAMS is empty: no model can be served")
        await monitor.check_all()
        monitor.start()
        log.info("gateway ready", extra={"upstreams": settings.upstreams, "version": __version__})
        try:
            yield
        finally:
            await monitor.stop()
            await session.close()

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

    routes: dict[str, ASGIApp] = {e.value: ProxyRoute(api, e) for e in Endpoint}
    models = ModelsRoute(api)
    routes[MODELS_PREFIX] = models
    app: ASGIApp = FastPathRouter(routes, api, prefixes={MODELS_PREFIX + "/": models})
    app = RequestContextMiddleware(app, metrics, access_log=settings.access_log)
    app = CORSMiddleware(
        app,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=_EXPOSED_HEADERS,
        max_age=600,
    )
    app.state = api.state  # type: ignore[attr-defined]
    return app


def app_from_env() -> ASGIApp:
    """Factory for uvicorn workers: each builds its settings from the environment."""
    from gateway.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
