"""The app factory: FastAPI for the operator routes, pure ASGI for the hot OpenAI routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import __version__
from gateway.api.anthropic_routes import COUNT_TOKENS, MESSAGES, MessagesRoute
from gateway.api.models_routes import PREFIX as MODELS_PREFIX
from gateway.api.models_routes import ModelsRoute
from gateway.api.openai_proxy import ProxyRoute
from gateway.api.request_checks import Endpoint
from gateway.api.serving_routes import JSON_PATHS, serving_routes
from gateway.config import Settings
from gateway.eval.routes import router as evals_router
from gateway.http import anthropic_errors, exception_handlers
from gateway.http.asgi import ASGIApp, Receive, Scope, Send
from gateway.http.body_limit import BodyClass, BodyClasses, BodyLimit
from gateway.http.body_pace import Pace
from gateway.http.context import RequestContextMiddleware
from gateway.http.cors import BrowserCORS
from gateway.http.dispatch import FastPathRouter
from gateway.keys.end_user_routes import router as end_users_router
from gateway.keys.routes import router as keys_router
from gateway.logs import access_log
from gateway.metrics import Metrics
from gateway.ops.adapters import router as adapters_router
from gateway.ops.engines import router as engines_router
from gateway.ops.routes import router as ops_router
from gateway.rag.routes import needs_database as rag_needs_database
from gateway.rag.routes import router as rag_router
from gateway.state import AppState, state_of
from gateway.ui import install as install_console
from gateway.ui.refusal import render_refusal
from gateway.ui.web import MAX_FORM_BYTES
from gateway.usage.routes import router as usage_router
from gateway.wiring import published, running

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
        anthropic=BodyClass(
            settings.max_body_bytes,
            "GATEWAY_MAX_BODY_BYTES",
            anthropic_errors.render_for_body_limit,
        ),
        serving_paths=JSON_PATHS,
        audio=BodyClass(settings.max_audio_bytes, "GATEWAY_MAX_AUDIO_BYTES"),
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
        async with running(settings, metrics) as state:
            for name, value in published(state).items():
                setattr(app.state, name, value)
            yield

    api = FastAPI(
        title="gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    api.state.settings = settings  # before the lifespan: routes that need only settings
    exception_handlers.install(api)
    api.include_router(ops_router)
    api.include_router(keys_router)
    api.include_router(end_users_router)
    api.include_router(usage_router)
    api.include_router(evals_router)
    # Retrieval's routes exist only with a database; without one they answer 503.
    api.include_router(rag_router if settings.database_url else rag_needs_database)
    api.include_router(engines_router)
    api.include_router(adapters_router)

    routes: dict[str, ASGIApp] = {e.value: ProxyRoute(api, e) for e in Endpoint}
    routes.update({path: MessagesRoute(api, path) for path in (MESSAGES, COUNT_TOKENS)})
    routes.update(serving_routes(api))
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
    install_console(api, app)  # /ui: its pages call the public API through `app`
    return GatewayApp(app, api)


class GatewayApp:
    """The whole gateway as one ASGI app, with the FastAPI app whose state holds what the
    lifespan built (for the console, and for tests that look inside)."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    @property
    def state(self) -> AppState:
        return state_of(self.api.state)


def app_from_env() -> ASGIApp:
    """Factory for uvicorn workers: each builds its settings from the environment."""
    from gateway.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
